/// Login by challenge (docs/protocol.md "Login"): verify the signature of the nonce and of the
/// node the client dialled, bind the name to the key on first use, then welcome the client and
/// deliver what was stored for it.
extension SignalingHub {
    func login(_ body: LoginBody, id: String, on connection: Int) async {
        guard let session = sessions[connection] else { return }
        let nonce = session.nonce
        // A nonce is good for one attempt: a failed login gets a fresh challenge.
        let next = Self.makeNonce()
        sessions[connection]?.nonce = next
        func fail(_ error: SignalingError) {
            session.handle.send(errorMessage(error, to: nil))
            session.handle.send(nodeMessage(to: "", .challenge(ChallengeBody(nonce: next))))
        }
        guard Address.isValidName(body.name) else {
            return fail(SignalingError(.badField, "a name is 1 to 32 characters of A-Z a-z 0-9 . _ - and does not start with . or -", of: id))
        }
        guard Identity.decodeKey(body.key) != nil else {
            return fail(SignalingError(.badField, "key must be a base64 Ed25519 public key (32 bytes)", of: id))
        }
        // The signature covers the node the client dialled: a node (or anyone on plain ws://)
        // that relays another node's challenge to its own clients gets logins signed for
        // itself, which the other node refuses here.
        let dialled = LoginBody.authority(body.node)
        guard let dialled, configuration.authorities.contains(dialled) else {
            return fail(SignalingError(.badSignature, "the login is for node '\(body.node.prefix(80))', which is not this node; sign for the host:port you dialled", of: id))
        }
        guard Identity.verify(signatureBase64: body.sig, text: LoginBody.signedText(nonce: nonce, name: body.name, node: body.node),
                              publicKeyBase64: body.key) else {
            return fail(SignalingError(.badSignature, "the signature does not verify for this key over the current challenge nonce, name and node", of: id))
        }
        // The forwarder's name is the node's own (docs/protocol.md "Room calls", *Forwarded mode*):
        // reserved whether or not this node forwards, so nobody can hold it before it does.
        if body.name == ForwarderAssignment.forwarderName, body.key != configuration.nodeIdentity?.publicKeyBase64 {
            return fail(SignalingError(.nameTaken, "the name \(body.name) is reserved for this node's forwarder (the node key); choose another name", of: id))
        }
        if let refusal = forwarderLoginRefusal(name: body.name, key: body.key, id: id) {
            return fail(refusal)
        }
        let bound: String
        do {
            bound = try await store.bind(name: body.name, key: body.key)
        } catch {
            return fail(SignalingError(error.code, error.reason, of: id))
        }
        // The owner key is the name's binding; any other key needs the owner's endorsement
        // (docs/protocol.md "Devices"). A revoked key has none and is refused like a stranger.
        var device: DeviceProof?
        if bound != body.key {
            do {
                guard let endorsement = try await store.endorsement(name: body.name, key: body.key) else {
                    return fail(SignalingError(.nameTaken, "the name \(body.name) is bound to another key at this node; log in with that key, link this device with a code from the name's owner device, or choose another name", of: id))
                }
                try await store.markSeen(name: body.name)
                device = DeviceProof(owner: bound, endorsement: endorsement)
            } catch {
                return fail(SignalingError(error.code, error.reason, of: id))
            }
        }
        guard sessions[connection] != nil else { return }
        let name = body.name
        let wasOnline = online[name] != nil
        // The same key logged in again (a reconnect that beat the old connection's timeout)
        // replaces its old connection; another device of the name stays.
        for old in online[name] ?? [] where old != connection && sessions[old]?.key == body.key {
            if let previous = sessions[old] {
                previous.handle.send(errorMessage(SignalingError(.replaced, "\(name) logged in on another connection with the same key"), to: name))
            }
            sessions[old]?.name = nil
            setOnline(name, (online[name] ?? []).filter { $0 != old })
            drop(old)
        }
        sessions[connection]?.name = name
        sessions[connection]?.key = body.key
        sessions[connection]?.device = device
        setOnline(name, (online[name] ?? []) + [connection])
        forwarderLoggedIn(name: name, key: body.key, on: connection)
        session.handle.gate.chatName = name
        let seconds = Double(configuration.heartbeat.components.seconds) + Double(configuration.heartbeat.components.attoseconds) / 1e18
        var welcome = WelcomeBody(name: name, key: body.key, heartbeat: seconds, iceServers: iceServers(name, session.handle))
        welcome.owner = device?.owner
        welcome.endorsement = device?.endorsement
        welcome.nodeKey = configuration.nodeIdentity?.publicKeyBase64
        welcome.members = clusterURLs.isEmpty ? nil : clusterURLs
        session.handle.send(nodeMessage(to: name, .welcome(welcome), id: id))
        logger.info("login", metadata: ["name": "\(name)", "connection": "\(connection)"])
        if !wasOnline {
            publishPresence(name: name, status: .online, key: bound)
            announce(name: name, status: .online, key: bound)
        }
        await deliverPending(to: name, handle: session.handle)
        await tellRunningRoomCalls(to: name)
    }

    /// Sends every stored message the recipient has not acknowledged, oldest first.
    func deliverPending(to name: String, handle: ConnectionHandle) async {
        do {
            for pending in try await store.pending(for: name) {
                handle.send(text: pending.frame)
            }
        } catch {
            logger.error("cannot read stored messages", metadata: ["name": "\(name)", "error": "\(error)"])
        }
    }
}
