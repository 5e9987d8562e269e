import Foundation

/// Node-to-node links (docs/protocol.md "Node links"): a peer at another node is addressed as
/// `name@host:port`; its messages travel over an authenticated link between the two nodes.
/// Chat is stored at the sending node until the other node has stored it in turn, so a link
/// going down loses nothing; presence and call setup are relayed while the link is up.
extension SignalingHub {
    // MARK: - Establishing

    /// The answering side: a node logs in with its node key instead of a peer's.
    func acceptLink(_ body: LinkBody, id: String, on connection: Int) async {
        guard let session = sessions[connection] else { return }
        let nonce = session.nonce
        let next = Self.makeNonce()
        sessions[connection]?.nonce = next
        func fail(_ error: SignalingError) {
            session.handle.send(errorMessage(error, to: nil))
            session.handle.send(nodeMessage(to: "", .challenge(ChallengeBody(nonce: next))))
        }
        guard let own = configuration.nodeAddress, let identity = configuration.nodeIdentity else {
            return fail(SignalingError(.forbidden, "this node does not take node links", of: id))
        }
        guard Address.isValidNode(body.node), body.node != own, Identity.decodeKey(body.key) != nil else {
            return fail(SignalingError(.badField, "link needs a node address host:port other than this node's and a base64 Ed25519 key", of: id))
        }
        guard Identity.verify(signatureBase64: body.sig, text: LinkBody.signedText(nonce: nonce, node: body.node), publicKeyBase64: body.key) else {
            return fail(SignalingError(.badSignature, "the link signature does not verify over the challenge nonce and node address", of: id))
        }
        do {
            try await checkNodeKey(node: body.node, key: body.key)
        } catch {
            return fail(SignalingError(error.code, error.reason, of: id))
        }
        guard sessions[connection] != nil else { return }
        let seconds = Double(configuration.heartbeat.components.seconds) + Double(configuration.heartbeat.components.attoseconds) / 1e18
        let linked = LinkedBody(node: own, key: identity.publicKeyBase64,
                                sig: identity.sign(text: LinkBody.signedText(nonce: body.nonce, node: own)), heartbeat: seconds)
        session.handle.send(nodeMessage(to: "", .linked(linked), id: id))
        linkKeys[body.node] = body.key
        await linkUp(body.node, on: connection)
    }

    /// Binds a node address to its key on first use, like a peer name; throws `name-taken`
    /// when another key holds the address.
    public func checkNodeKey(node: String, key: String) async throws(SignalingError) {
        let bound = try await store.bind(name: "@" + node, key: key)
        guard bound == key else {
            throw SignalingError(.nameTaken, "node \(node) is bound to another key here; if it was re-keyed on purpose, remove its binding from the store")
        }
    }

    /// The dialling side: `NodeLink` finished the handshake; the link now carries routed traffic.
    public func openLink(node: String, key: String? = nil, remoteIP: String? = nil,
                         sink: AsyncStream<ConnectionHandle.Outbound>.Continuation) async -> ConnectionHandle {
        let handle = open(hostHint: nil, remoteIP: remoteIP, sink: sink, silent: true)
        if let key { linkKeys[node] = key }
        await linkUp(node, on: handle.id)
        return handle
    }

    /// Marks the connection as the link to `node`, then sends what waited for it: stored chat
    /// and the presence subscriptions of local peers.
    func linkUp(_ node: String, on connection: Int) async {
        if let old = links[node], old != connection {
            sessions[old]?.node = nil
            drop(old)
        }
        sessions[connection]?.node = node
        // A link carries the traffic of many peers: it gets a bigger budget.
        sessions[connection]?.limiter = RateLimiter(rate: configuration.rate * 20, burst: configuration.burst * 20, now: now())
        links[node] = connection
        logger.info("node link up", metadata: ["node": "\(node)", "connection": "\(connection)"])
        sendMesh(to: connection)
        subscribeRemote(watchers.filter { !$0.value.isEmpty }.keys.filter { Address.parse($0)?.node == node })
        do {
            for pending in try await store.pending(forNode: node) {
                remember(pending.id, sentBy: pending.sender)
                link(to: node)?.send(text: pending.frame)
            }
        } catch {
            logger.error("cannot read messages for a node", metadata: ["node": "\(node)", "error": "\(error)"])
        }
    }

    /// Peers at a node whose link went down are offline as far as anyone here can tell.
    func linkDown(_ node: String) {
        links[node] = nil
        linkKeys[node] = nil
        meshHooks?.changed()
        logger.info("node link down", metadata: ["node": "\(node)"])
        for (address, connections) in watchers where !connections.isEmpty && Address.parse(address)?.node == node {
            announce(name: address, status: .offline, key: nil)
        }
    }

    /// Asks the nodes of these `name@node` addresses for their presence, or reports them
    /// offline when there is no link.
    func subscribeRemote(_ addresses: [String]) {
        var byNode: [String: [String]] = [:]
        for address in addresses {
            guard let parsed = Address.parse(address), let node = parsed.node else { continue }
            byNode[node, default: []].append(parsed.name)
        }
        for (node, names) in byNode {
            if let link = link(to: node) {
                link.send(nodeMessage(to: SignalingProtocol.nodeAddress, .subscribe(NamesBody(names: names))))
            } else {
                for name in names { announce(name: "\(name)@\(node)", status: .offline, key: nil) }
            }
        }
    }

    func remember(_ id: String, sentBy name: String) {
        if forwarded.count >= 10_000 { forwarded.removeAll() }
        forwarded[id] = name
    }

    // MARK: - Outgoing chat

    /// Chat to `name@node`: stored here until the other node has it, sent now if the link is up.
    func remoteChat(_ body: ChatBody, id: String, name: String, to target: String, node: String, reply: ConnectionHandle) async {
        do {
            let known = try await store.key(of: "@" + node) != nil
            guard links[node] != nil || known else {
                return reply.send(errorMessage(SignalingError(.unknownRecipient, "no link to node \(node) has ever been made", of: id), to: name))
            }
            let frame = SignalingCodec.encode(SignalingMessage(id: id, from: qualified(name), to: target,
                                                               payload: .chat(ChatBody(text: body.text, sent: Date().timeIntervalSince1970))))
            let duplicate = try await store.hasMessage(sender: name, id: id)
            let fresh = duplicate ? [] : try await store.enqueue(sender: name, id: id, recipients: [target], frame: frame)
            reply.send(ack(id, duplicate ? .duplicate : .ok, to: name))
            if !fresh.isEmpty, let link = link(to: node) {
                remember(id, sentBy: name)
                link.send(text: frame)
            }
        } catch {
            reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: name))
        }
    }

    // MARK: - Incoming over a link

    func fromLink(_ message: SignalingMessage, node: String, on connection: Int) async {
        guard let session = sessions[connection] else { return }
        let reply = session.handle
        func refuse(_ error: SignalingError) { reply.send(errorMessage(error, to: SignalingProtocol.nodeAddress)) }
        // A link speaks for the peers of its own node only.
        let sender = Address.parse(message.from)
        let fromItsPeer = sender?.node == node
        switch message.payload {
        case .ping:
            reply.send(nodeMessage(to: SignalingProtocol.nodeAddress, .pong, id: message.id))
        case .pong:
            break
        case .subscribe(let body):
            // The link speaks for all the peers of its node, but its table here is bounded too.
            let names = Set(body.names.filter(Address.isValidName))
            guard (sessions[connection]?.watching.union(names).count ?? 0) <= configuration.maxLinkSubscriptions else {
                return refuse(SignalingError(.badField, "at most \(configuration.maxLinkSubscriptions) subscriptions per node link", of: message.id))
            }
            for name in names {
                watchers[name, default: []].insert(connection)
                sessions[connection]?.watching.insert(name)
            }
            for name in body.names where Address.isValidName(name) {
                let key = (try? await store.key(of: name)) ?? nil
                reply.send(nodeMessage(to: SignalingProtocol.nodeAddress,
                                       .presence(PresenceBody(name: name, status: online[name] != nil ? .online : .offline, key: key))))
            }
        case .unsubscribe(let body):
            for name in body.names {
                unwatch(name, by: connection)
                sessions[connection]?.watching.remove(name)
            }
        case .presence(let body):
            guard Address.isValidName(body.name) else { return }
            announce(name: "\(body.name)@\(node)", status: body.status, key: body.key)
        case .chat(let body):
            guard fromItsPeer else { return refuse(SignalingError(.forbidden, "a link carries messages of its own node's peers only", of: message.id)) }
            await linkedChat(body, message: message, reply: reply)
        case .ack(let body):
            if let from = body.sender {
                try? await store.markDelivered(sender: Address.bareName(from), id: body.of, node: node)
                forwarded[body.of] = nil
            }
        case .callSetup(let type, let body):
            guard fromItsPeer else { return refuse(SignalingError(.forbidden, "a link carries messages of its own node's peers only", of: message.id)) }
            guard let target = normalise(message.to), !target.contains("@"), let callee = handle(of: target) else {
                return refuse(SignalingError(.unavailable, "\(Address.bareName(message.to)) is offline; call setup is not stored", of: message.id))
            }
            callee.send(SignalingMessage(id: message.id, from: message.from, to: target, payload: .callSetup(type, body)))
            // The receiver verifies the signature against its pinned key; the ids matter here.
            if let payload = try? JSONDecoder().decode(CallPayload.self, from: Data(body.payload.utf8)) {
                track(type, payload, from: message.from, to: target)
            }
        case .timeout(let body):
            if let target = normalise(message.to), !target.contains("@") {
                handle(of: target)?.send(nodeMessage(to: target, .timeout(body)))
            }
        case .error(let body):
            if let of = body.of, let pending = pendingDialbacks.removeValue(forKey: of) {
                logger.info("mesh: dialback refused", metadata: ["node": "\(node)", "code": "\(body.code)", "reason": "\(body.reason)"])
                return pending.resume(returning: nil)
            }
            guard let of = body.of, let local = forwarded.removeValue(forKey: of) else { return }
            // The other node refused a message for good (unknown peer, offline callee).
            try? await store.markDelivered(sender: local, id: of, node: node)
            handle(of: local)?.send(errorMessage(SignalingError(body.code, "node \(node): \(body.reason)", of: of), to: local))
        case .mesh(let body):
            await receiveRecords(body.records, from: node, on: connection)
        case .dialback(let body):
            serveDialback(body, id: message.id, from: node, on: connection)
        case .dialbackResult(let body):
            pendingDialbacks.removeValue(forKey: body.of)?.resume(returning: body)
        default:
            refuse(SignalingError(.forbidden, "\(message.type.rawValue) is not used on a node link", of: message.id))
        }
    }

    /// Chat from a peer at the other node to a local peer: stored, acknowledged to the other
    /// node (which then forgets it), delivered.
    private func linkedChat(_ body: ChatBody, message: SignalingMessage, reply: ConnectionHandle) async {
        let id = message.id
        guard let target = normalise(message.to), !target.contains("@") else {
            return reply.send(errorMessage(SignalingError(.badField, "'\(message.to.prefix(60))' is not a peer of this node", of: id), to: SignalingProtocol.nodeAddress))
        }
        do {
            guard try await store.key(of: target) != nil else {
                return reply.send(errorMessage(SignalingError(.unknownRecipient, "\(target) has never logged in at this node", of: id), to: SignalingProtocol.nodeAddress))
            }
            let text = SignalingCodec.encode(SignalingMessage(id: id, from: message.from, to: target,
                                                              payload: .chat(ChatBody(text: body.text, sent: body.sent ?? Date().timeIntervalSince1970))))
            let duplicate = try await store.hasMessage(sender: message.from, id: id)
            let fresh = duplicate ? [] : try await store.enqueue(sender: message.from, id: id, recipients: [target], frame: text)
            reply.send(nodeMessage(to: SignalingProtocol.nodeAddress, .ack(AckBody(of: id, status: duplicate ? .duplicate : .ok, sender: message.from))))
            for recipient in fresh { handle(of: recipient)?.send(text: text) }
        } catch {
            reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: SignalingProtocol.nodeAddress))
        }
    }
}
