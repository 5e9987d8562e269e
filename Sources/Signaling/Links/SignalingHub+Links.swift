import Foundation

/// Node-to-node links (docs/protocol.md "Node links"): a peer at another node is addressed as
/// `name@host:port`; its messages travel over an authenticated link between the two nodes.
/// Chat is stored at the sending node until the other node has stored it in turn, so a link
/// going down loses nothing; presence and call setup are relayed while the link is up.
extension SignalingHub {
    // MARK: - Establishing

    /// The answering side: a node logs in with its node key instead of a peer's. The address
    /// it claims is bound to its key only once the node *at* that address proves the key
    /// (dial-back); until then the link carries mesh messages only.
    func acceptLink(_ body: LinkBody, id: String, on connection: Int) async {
        guard let session = sessions[connection] else { return }
        let nonce = session.nonce
        let next = Self.makeNonce()
        sessions[connection]?.nonce = next
        func fail(_ error: SignalingError) {
            logLimited(.notice, "node link refused", kind: "link refused", connection: nil,
                       metadata: ["claimed-node": "\(body.node.prefix(80))", "code": "\(error.code)", "reason": "\(error.reason)"])
            session.handle.send(errorMessage(error, to: nil))
            session.handle.send(nodeMessage(to: "", .challenge(ChallengeBody(nonce: next))))
        }
        guard let own = configuration.nodeAddress, let identity = configuration.nodeIdentity else {
            return fail(SignalingError(.forbidden, "this node does not take node links", of: id))
        }
        guard Address.isValidNode(body.node), body.node != own, !configuration.authorities.contains(body.node), Identity.decodeKey(body.key) != nil else {
            return fail(SignalingError(.badField, "link needs a node address host:port other than this node's and a base64 Ed25519 key", of: id))
        }
        // The dialler signed for the address it dialled: this node's own address, or another of
        // its addresses (HubConfiguration.authorities: a bind address while the node names
        // itself by its public host). The node answers as the address dialled.
        let candidates = [own] + configuration.authorities.sorted().filter { $0 != own }.prefix(64)
        guard let answeredAs = candidates.first(where: {
            Identity.verify(signatureBase64: body.sig, text: LinkBody.signedText(nonce: nonce, node: body.node, to: $0), publicKeyBase64: body.key)
        }) else {
            return fail(SignalingError(.badSignature, "the link signature does not verify over the challenge nonce, the node address and this node's address \(own)", of: id))
        }
        guard isAllowedNodeKey(body.key) else {
            return fail(SignalingError(.forbidden, "this is a closed mesh: the key \(body.key.prefix(12))… is not one of its mesh keys", of: id))
        }
        do {
            if let pinned = try await store.key(of: "@" + body.node), pinned != body.key {
                return fail(SignalingError(.nameTaken, "node \(body.node) is bound to another key here; if it was re-keyed on purpose, remove its binding from the store", of: id))
            }
        } catch {
            return fail(SignalingError(error.code, error.reason, of: id))
        }
        guard trust.links[connection] == nil else {
            return fail(SignalingError(.badField, "this connection is a link already", of: id))
        }
        // Claimed for now, so that a second `link` on this connection waits for nothing.
        trust.links[connection] = LinkTrust.Link(node: body.node, key: body.key, weProved: false, theyProved: true, nonce: body.nonce,
                                                 ownAddress: answeredAs == own ? nil : answeredAs)
        let outcome = await proveNow(body.node)
        guard sessions[connection] != nil, trust.links[connection] != nil else { return }
        if case .proven(let key) = outcome, key != body.key {
            trust.links[connection] = nil
            return fail(SignalingError(.notProven, "the node at \(body.node) proved another key: a link may only claim the address of the node that holds its key", of: id))
        }
        let proven = outcome == .proven(key: body.key)
        if proven {
            do {
                try await checkNodeKey(node: body.node, key: body.key)
            } catch {
                trust.links[connection] = nil
                return fail(SignalingError(error.code, error.reason, of: id))
            }
        }
        guard sessions[connection] != nil else { return }
        let seconds = Double(configuration.heartbeat.components.seconds) + Double(configuration.heartbeat.components.attoseconds) / 1e18
        let linked = LinkedBody(node: answeredAs, key: identity.publicKeyBase64,
                                sig: identity.sign(text: LinkBody.signedText(nonce: body.nonce, node: answeredAs, to: body.node)),
                                heartbeat: seconds, proven: proven)
        session.handle.send(nodeMessage(to: "", .linked(linked), id: id))
        sessions[connection]?.node = body.node
        if proven {
            trust.links[connection]?.weProved = true
            await promote(connection)
        } else {
            logLimited(.notice, "node link not proven yet: mesh messages only", kind: "link unproven", connection: nil, metadata: [
                "claimed-node": "\(body.node.prefix(80))", "link": "\(connection)", "reason": "\(outcome.map { "\($0)" } ?? "busy")",
            ])
            meshLinkUp(connection)
            scheduleProof(connection)
        }
    }

    /// Binds a node address to its key on first use, like a peer name; throws `name-taken`
    /// when another key holds the address. Called only for an address this node has proven
    /// (dialled itself, or by dial-back).
    public func checkNodeKey(node: String, key: String) async throws(SignalingError) {
        let bound = try await store.bind(name: "@" + node, key: key)
        guard bound == key else {
            throw SignalingError(.nameTaken, "node \(node) answered with key \(key.prefix(12))… but key \(bound.prefix(12))… is pinned for it since its first link; if it was re-keyed on purpose, remove the binding '@\(node)' from the store")
        }
    }

    /// Whether a closed mesh (`--mesh-key`) lets this key in; an open mesh lets any key in.
    public func isAllowedNodeKey(_ key: String) -> Bool {
        guard let allowed = configuration.meshKeys else { return true }
        return allowed.contains(key) || key == configuration.nodeIdentity?.publicKeyBase64
    }

    /// The dialling side: `NodeLink` finished the handshake and checked the other node's
    /// address and key; the link carries routed traffic once the other node has proven this
    /// node's address too (`proven`), mesh messages until then.
    public func openLink(node: String, key: String? = nil, remoteIP: String? = nil, proven: Bool = true,
                         sink: AsyncStream<ConnectionHandle.Outbound>.Continuation) async -> ConnectionHandle {
        let handle = open(hostHint: nil, remoteIP: remoteIP, sink: sink, silent: true)
        sessions[handle.id]?.node = node
        // The operator chose to link to this node, and this node proved its address: it gets a
        // link's budget even while it has not proven ours (it sends the mesh's records then).
        handle.gate.setLimiter(RateLimiter(rate: configuration.rate * 20, burst: configuration.burst * 20, now: now()))
        trust.links[handle.id] = LinkTrust.Link(node: node, key: key ?? "", weProved: true, theyProved: proven)
        if proven {
            if let key { linkKeys[node] = key }
            await linkUp(node, on: handle.id)
        } else {
            meshLinkUp(handle.id)
        }
        return handle
    }

    /// A link that carries mesh messages only (not proven both ways yet): it gets the records.
    func meshLinkUp(_ connection: Int) {
        guard let node = trust.links[connection]?.node else { return }
        logger.info("node link up for mesh messages only", metadata: ["node": "\(node)", "connection": "\(connection)"])
        sendMesh(to: connection)
    }

    /// Both sides proved each other: bind, tell the dialler (when it waited for this), and route.
    func promote(_ connection: Int) async {
        guard var link = trust.links[connection], let identity = configuration.nodeIdentity, let nodeAddress = configuration.nodeAddress else { return }
        let own = link.ownAddress ?? nodeAddress
        let wasMeshOnly = !link.weProved
        link.weProved = true
        // Not cancelled: when a retry proved the link, that retry is the task running this.
        link.retry = nil
        trust.links[connection] = link
        if wasMeshOnly {
            do {
                try await checkNodeKey(node: link.node, key: link.key)
            } catch {
                sessions[connection]?.handle.send(errorMessage(SignalingError(error.code, error.reason), to: SignalingProtocol.nodeAddress))
                return drop(connection)
            }
            let seconds = Double(configuration.heartbeat.components.seconds) + Double(configuration.heartbeat.components.attoseconds) / 1e18
            let linked = LinkedBody(node: own, key: identity.publicKeyBase64,
                                    sig: identity.sign(text: LinkBody.signedText(nonce: link.nonce ?? "", node: own, to: link.node)),
                                    heartbeat: seconds, proven: true)
            sessions[connection]?.handle.send(nodeMessage(to: SignalingProtocol.nodeAddress, .linked(linked)))
        }
        // Other connections that claimed this address with another key lose their claim.
        for (other, claim) in trust.links where other != connection && claim.node == link.node && claim.key != link.key {
            sessions[other]?.handle.send(errorMessage(SignalingError(.notProven, "the node at \(link.node) proved another key"), to: SignalingProtocol.nodeAddress))
            drop(other)
        }
        mesh?.releaseUnproven(node: link.node, except: link.key)
        guard sessions[connection] != nil else { return }
        linkKeys[link.node] = link.key
        await linkUp(link.node, on: connection)
        // Its own record, held while its address was not proven, is now usable.
        if let held = mesh?.unproven[link.key], held.record.node == link.node {
            await file([held.signed], from: link.node, on: connection)
        }
    }

    /// Forgets what a closed connection proved; a retry waiting for it stops.
    func forgetLink(_ connection: Int) {
        trust.links.removeValue(forKey: connection)?.retry?.cancel()
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
        sessions[connection]?.handle.gate.setLimiter(RateLimiter(rate: configuration.rate * 20, burst: configuration.burst * 20, now: now()))
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

    /// `body` as sent over a link: a key of a local peer with this node's signature of it.
    /// `toward`: the node it goes to, which may know this node by another of its addresses.
    func attested(_ body: PresenceBody, toward node: String? = nil) -> PresenceBody {
        guard let key = body.key, !body.name.contains("@"), let identity = configuration.nodeIdentity,
              let own = node.flatMap(ownAddress(toward:)) ?? configuration.nodeAddress else { return body }
        var signed = body
        signed.sig = identity.sign(text: PresenceBody.attestation(address: "\(body.name)@\(own)", key: key))
        return signed
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
            let frame = SignalingCodec.encode(SignalingMessage(id: id, from: qualified(name, toward: node), to: target,
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
        // A link speaks for the peers of its own node only, and only once this node has proven
        // that node's address (and it ours): before that, mesh messages only.
        let sender = Address.parse(message.from)
        let fromItsPeer = sender?.node == node
        let routed = links[node] == connection
        switch message.payload {
        case .ping, .pong, .mesh, .dialback, .dialbackResult, .linked, .error:
            break
        default:
            guard routed else {
                logLimited(.notice, "unproven node link: message refused", kind: "unproven", connection: connection,
                           metadata: ["claimed-node": "\(node)", "type": "\(message.type.rawValue)"])
                return refuse(SignalingError(.notProven, "this link carries mesh messages only until the address \(node) is proven by dial-back", of: message.id))
            }
        }
        if routed, await roomFromLink(message, node: node, reply: reply) { return }
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
                                       .presence(attested(PresenceBody(name: name, status: online[name] != nil ? .online : .offline, key: key), toward: node))))
            }
        case .unsubscribe(let body):
            for name in body.names {
                unwatch(name, by: connection)
                sessions[connection]?.watching.remove(name)
            }
        case .presence(let body):
            guard Address.isValidName(body.name) else { return }
            // A key for one of its peers counts only with the node's own signature of it.
            if let key = body.key {
                guard let nodeKey = linkKeys[node], let sig = body.sig,
                      Identity.verify(signatureBase64: sig, text: PresenceBody.attestation(address: "\(body.name)@\(node)", key: key), publicKeyBase64: nodeKey) else {
                    logLimited(.notice, "node link: presence key without a valid node signature", kind: "presence", connection: connection, metadata: ["node": "\(node)"])
                    return refuse(SignalingError(.badSignature, "the key for \(body.name) is not signed by \(node)'s node key", of: message.id))
                }
            }
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
            // The same freshness and replay rules as for a local sender (docs/protocol.md, Call setup).
            if let refusal = linkedCallSetupRefusal(type, body, message: message) { return refuse(refusal) }
            guard let target = normalise(message.to), !target.contains("@"), handle(of: target) != nil else {
                return refuse(SignalingError(.unavailable, "\(Address.bareName(message.to)) is offline; call setup is not stored", of: message.id))
            }
            // The receiver verifies the signature against its pinned key; the ids matter here.
            let payload = try? JSONDecoder().decode(CallPayload.self, from: Data(body.payload.utf8))
            // A forwarder takes the calls the node let through (docs/protocol.md "Room calls",
            // *Forwarded mode* item 3): from another node's peer, too, only a participant's
            // tagged call of a forwarded call of a room here, to the forwarder assigned to it.
            if type == .call, ForwarderAssignment.isForwarderName(target),
               let refusal = linkedForwarderCallRefusal(payload, caller: message.from, forwarder: target, node: node) {
                return refuse(SignalingError(.forbidden, refusal, of: message.id))
            }
            // A call this node cannot time is not relayed: its callee's answer would find no
            // ringing call here (SignalingHub+Calls.swift).
            if type == .call, let payload, calls[RingingCall.Key(caller: message.from, callee: target, call: payload.call)] == nil,
               let refusal = ringRefusal(caller: message.from) {
                return refuse(SignalingError(.rateLimited, refusal, of: message.id))
            }
            let relayed = SignalingMessage(id: message.id, from: message.from, to: target, payload: .callSetup(type, body))
            if let payload {
                _ = deliverCallSetup(relayed, from: message.from, to: target, call: payload.call)
                track(type, payload, from: message.from, to: target)
                if type == .call { rang(caller: message.from, callee: target, call: payload.call) }
                if type == .hangup || type == .cancel { routeCall(type, from: target, to: message.from, call: payload.call, connection: 0) }
            } else {
                handle(of: target)?.send(relayed)
            }
        case .timeout(let body):
            // Only for a call this node relayed between one of its peers and a peer of that
            // node: the ring timer of such a call runs there too. Any other call id is not the
            // link's to end.
            func relayed(_ key: RingingCall.Key, to target: String) -> Bool {
                key.call == body.call && ((key.caller == target && Address.parse(key.callee)?.node == node)
                                          || (key.callee == target && Address.parse(key.caller)?.node == node))
            }
            guard let target = normalise(message.to), !target.contains("@"),
                  let key = calls.keys.first(where: { relayed($0, to: target) }), let call = calls[key] else {
                logLimited(.notice, "node link: timeout refused", kind: "timeout", connection: connection, metadata: ["node": "\(node)", "call": "\(body.call.prefix(64))"])
                return refuse(SignalingError(.forbidden, "no call \(body.call.prefix(64)) rings here between \(message.to.prefix(40)) and a peer of \(node)", of: message.id))
            }
            call.timer.cancel()
            calls[key] = nil
            handle(of: target)?.send(nodeMessage(to: target, .timeout(body)))
        case .linked(let body):
            // The other node proved this node's address after all (it answered `proven: false`).
            guard var link = trust.links[connection], link.weProved, !link.theyProved, body.proven == true else { return }
            link.theyProved = true
            trust.links[connection] = link
            logger.notice("node link proven by the other node", metadata: ["node": "\(node)", "connection": "\(connection)"])
            if !link.key.isEmpty { linkKeys[node] = link.key }
            await linkUp(node, on: connection)
        case .error(let body):
            if let of = body.of, let pending = pendingDialbacks.removeValue(forKey: of) {
                logger.info("mesh: dialback refused", metadata: ["node": "\(node)", "code": "\(body.code)", "reason": "\(body.reason)"])
                return pending.resume(returning: nil)
            }
            guard routed, let of = body.of, let local = forwarded.removeValue(forKey: of) else { return }
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
