/// Rooms across nodes (docs/protocol.md "Rooms across nodes"): `#room@host:port` is the room
/// `#room` of the node at `host:port`. That node (the host) keeps the room's members and history;
/// a member's own node relays the member's requests to it over their node link and hands the
/// host's answers and pushes (room chat, room events) to the member. Nothing of a remote room is
/// stored at the member's node but which of its names the host confirmed as members: a host can
/// push to those only.
extension SignalingHub {
    /// A request relayed to a room's host, waiting for its answer.
    struct RoomRelay {
        /// The local name that asked.
        let name: String
        /// The room as the local name addresses it, `#room@host:port`.
        let room: String
        let type: MessageType
        let expires: ContinuousClock.Instant
    }

    /// Relayed requests waiting for an answer at once, node-wide; each waits at most
    /// `roomRelayTimeout` (a client's own request times out before).
    static let maxRoomRelays = 4096
    static let roomRelayTimeout: Duration = .seconds(30)

    /// `#name` or `#name@host:port`: the room's name at its node, and that node (nil for this
    /// node, also when it is named by one of its own addresses). Nil when it is not a room.
    func roomAddress(_ text: String) -> (name: String, node: String?)? {
        guard text.hasPrefix("#"), let parsed = Address.parse(String(text.dropFirst())) else { return nil }
        let room = "#" + parsed.name
        guard let node = parsed.node, node != configuration.nodeAddress, !configuration.authorities.contains(node) else { return (room, nil) }
        return (room, node)
    }

    // MARK: - The member's node

    /// Sends a local name's request about `room` (the host's name for it) to its host `node`,
    /// and remembers who asked so that the answer finds its way back. Refused with
    /// `unavailable` while there is no link to the host.
    func relayToHost(_ message: SignalingMessage, room: String, node: String, name: String, reply: ConnectionHandle) {
        guard let link = link(to: node) else {
            return reply.send(errorMessage(SignalingError(.unavailable, "no link to node \(node) now, so its room \(room) is out of reach; try again once the nodes are linked",
                                                          of: message.id), to: name))
        }
        let now = now()
        if roomRelays.count >= Self.maxRoomRelays { roomRelays = roomRelays.filter { $0.value.expires > now } }
        guard roomRelays.count < Self.maxRoomRelays else {
            return reply.send(errorMessage(SignalingError(.rateLimited, "\(Self.maxRoomRelays) requests wait for other nodes' rooms already; try again in a few seconds",
                                                          of: message.id), to: name))
        }
        roomRelays[relayKey(name, message.id)] = RoomRelay(name: name, room: "\(room)@\(node)", type: message.type, expires: now + Self.roomRelayTimeout)
        var relayed = message
        relayed.from = qualified(name, toward: node)
        // This node vouches for what its peer said in a room of another node: the host and the
        // other members' nodes check it against this node's key.
        if case .chat(var body) = relayed.payload, let identity = configuration.nodeIdentity {
            body.sig = identity.sign(text: ChatBody.roomAttestation(room: "\(room)@\(node)", from: relayed.from, id: message.id, text: body.text))
            relayed.payload = .chat(body)
        }
        link.send(relayed)
    }

    private func relayKey(_ name: String, _ id: String) -> String { name + "\n" + id }

    /// An address the host wrote, as this node writes it: this node's own peers bare, the host's
    /// own peers (written bare by a careless host) qualified with the host's address.
    func fromHost(_ address: String, host: String) -> String {
        address.contains("@") ? normalise(address) ?? address : "\(address)@\(host)"
    }

    // MARK: - Over a link, both sides

    /// Handles what a link carries about rooms: requests of its node's peers about this node's
    /// rooms, and answers and pushes about rooms of that node for peers here. False for anything
    /// else (the link's other handlers take it).
    func roomFromLink(_ message: SignalingMessage, node: String, reply: ConnectionHandle) async -> Bool {
        let member = message.from
        // A request speaks for a peer of the linked node only (as the link's chat does).
        let fromItsPeer = Address.parse(member)?.node == node
        func refuse(_ error: SignalingError) { reply.send(errorMessage(error, to: fromItsPeer ? member : SignalingProtocol.nodeAddress)) }
        let notItsPeer = SignalingError(.forbidden, "a link carries requests of its own node's peers only", of: message.id)
        switch message.payload {
        // The host's side.
        case .join(let body):
            guard fromItsPeer else { refuse(notItsPeer); return true }
            await remoteJoin(body.room, id: message.id, member: member, node: node, reply: reply)
        case .leave(let body):
            guard fromItsPeer else { refuse(notItsPeer); return true }
            guard Address.isValidRoom(body.room) else { refuse(SignalingError(.badField, "a room is # followed by a valid name", of: message.id)); return true }
            await leave(body.room, id: message.id, name: member, reply: reply)
        case .members(let body) where body.members == nil && body.of == nil:
            guard fromItsPeer else { refuse(notItsPeer); return true }
            guard Address.isValidRoom(body.room) else { refuse(SignalingError(.badField, "a room is # followed by a valid name", of: message.id)); return true }
            await members(body.room, id: message.id, name: member, reply: reply, toward: node)
        case .history(let body) where body.messages == nil && body.of == nil:
            guard fromItsPeer else { refuse(notItsPeer); return true }
            guard Address.isValidRoom(body.room) else { refuse(SignalingError(.badField, "a room is # followed by a valid name", of: message.id)); return true }
            await history(body, id: message.id, name: member, reply: reply, toward: node)
        case .chat(let body) where message.to.hasPrefix("#"):
            guard fromItsPeer else { refuse(notItsPeer); return true }
            guard Address.isValidRoom(message.to) else { refuse(SignalingError(.badField, "a room is # followed by a valid name", of: message.id)); return true }
            guard body.text.utf8.count <= configuration.maxChatBytes else {
                refuse(SignalingError(.tooLarge, "chat text over \(configuration.maxChatBytes) bytes", of: message.id))
                return true
            }
            // Signed by the member's node for this room as this node is known to it.
            let room = "\(message.to)@\(ownAddress(toward: node) ?? configuration.nodeAddress ?? "")"
            guard let key = linkKeys[node], let sig = body.sig,
                  Identity.verify(signatureBase64: sig, text: ChatBody.roomAttestation(room: room, from: member, id: message.id, text: body.text), publicKeyBase64: key) else {
                logLimited(.notice, "node link: room chat without a valid node signature", kind: "room chat sig", connection: nil, metadata: ["node": "\(node)"])
                refuse(SignalingError(.badSignature, "room chat over a link carries its node's signature of the room, sender, id and text", of: message.id))
                return true
            }
            await roomChat(ChatBody(text: body.text, sig: sig), id: message.id, room: message.to, name: member, reply: reply)
        case .roomCall(.request(let body)):
            guard fromItsPeer else { refuse(notItsPeer); return true }
            await linkedRoomCallRequest(body, message: message, node: node, reply: reply)
        // The member's side.
        case .roomCall(.state(let body)):
            await pushedRoomCall(body, message: message, host: node, reply: reply)
        case .chat(let body) where body.room != nil:
            await pushedChat(body, message: message, host: node, reply: reply)
        case .room(let body):
            await pushedEvent(body, message: message, host: node, reply: reply)
        case .ack(let body) where body.sender == nil:
            return await answered(message, of: body.of, host: node)
        case .error(let body):
            guard let of = body.of else { return false }
            return await answered(message, of: of, host: node)
        case .members(let body):
            guard let of = body.of else { return false }
            return await answered(message, of: of, host: node)
        case .history(let body):
            guard let of = body.of else { return false }
            return await answered(message, of: of, host: node)
        default:
            return false
        }
        return true
    }

    // MARK: - The host's side

    /// A peer of a linked node joins a room here. Such peers join rooms that exist (they are
    /// created by this node's own peers) and, all of that node's peers together, hold at most
    /// `limits.nodeMemberships` memberships here: what a linked node can make this one keep.
    private func remoteJoin(_ room: String, id: String, member: String, node: String, reply: ConnectionHandle) async {
        guard Address.isValidRoom(room) else {
            return reply.send(errorMessage(SignalingError(.badField, "a room is # followed by a valid name", of: id), to: member))
        }
        do {
            guard try await store.room(room) != nil else {
                return reply.send(errorMessage(SignalingError(.forbidden, "there is no room \(room) at this node; rooms are created by its own peers", of: id), to: member))
            }
            if try await !store.members(of: room).contains(member) {
                let held = try await store.memberships(ofNode: node)
                guard held < store.limits.nodeMemberships else {
                    return reply.send(errorMessage(SignalingError(.storeFull, "the peers of \(node) hold \(held) room memberships here, the most this node keeps for one node", of: id), to: member))
                }
            }
        } catch {
            return reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: member))
        }
        await join(room, rule: nil, id: id, name: member, reply: reply)
    }

    // MARK: - The member's side

    /// The host's answer to a relayed request (`ack`, `error`, `members`, `history`), handed to
    /// the local name that asked; false when no relayed request of that id waits.
    private func answered(_ message: SignalingMessage, of id: String, host: String) async -> Bool {
        guard let target = normalise(message.to), !target.contains("@"), let relay = roomRelays.removeValue(forKey: relayKey(target, id)),
              relay.room.hasSuffix("@" + host) else { return false }
        let peer = handle(of: target)
        switch message.payload {
        case .ack(let body):
            do {
                if relay.type == .join { try await store.addRemoteRoom(relay.room, member: target) }
                if relay.type == .leave { try await store.removeRemoteRoom(relay.room, member: target) }
            } catch {
                return peer?.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: target)) != nil || true
            }
            peer?.send(nodeMessage(to: target, .ack(AckBody(of: id, status: body.status))))
        case .error(let body):
            peer?.send(errorMessage(SignalingError(body.code, "node \(host): \(body.reason)", of: id), to: target))
        case .members(let body):
            let list = (body.members ?? []).map { RoomMember(name: fromHost($0.name, host: host), online: $0.online, key: $0.key) }
            peer?.send(nodeMessage(to: target, .members(MembersBody(room: relay.room, members: list, of: id))))
        case .history(let body):
            let all = body.messages ?? []
            let vouchedFor = all.filter { vouched($0.sig, room: relay.room, sender: $0.from, id: $0.id, text: $0.text, host: host) }
            if vouchedFor.count < all.count {
                logLimited(.notice, "node link: history entries without a valid signature of their sender's node dropped", kind: "history sig",
                           connection: nil, metadata: ["node": "\(host)", "dropped": "\(all.count - vouchedFor.count)"])
            }
            let entries = vouchedFor.map { HistoryEntry(seq: $0.seq, from: fromHost($0.from, host: host), id: $0.id, text: $0.text, sent: $0.sent) }
            peer?.send(nodeMessage(to: target, .history(HistoryBody(room: relay.room, messages: entries, more: body.more ?? false, of: id))))
        default:
            break
        }
        return true
    }

    /// Room chat the host pushes to a local member: handed on if the member is online (not
    /// stored: a member who was away reads the host's history).
    private func pushedChat(_ body: ChatBody, message: SignalingMessage, host: String, reply: ConnectionHandle) async {
        guard let target = normalise(message.to), !target.contains("@"), let name = body.room, Address.isValidRoom(name) else {
            return reply.send(errorMessage(SignalingError(.badField, "room chat over a link names a local member in to and the host's #room in body.room", of: message.id), to: SignalingProtocol.nodeAddress))
        }
        let room = "\(name)@\(host)"
        guard (try? await store.isRemoteMember(target, of: room)) == true else {
            logLimited(.notice, "node link: room chat for a name that is not in the room", kind: "room push", connection: nil, metadata: ["node": "\(host)"])
            return reply.send(errorMessage(SignalingError(.forbidden, "\(target) is not a member of \(room) as far as this node knows", of: message.id), to: SignalingProtocol.nodeAddress))
        }
        guard vouched(body.sig, room: room, sender: message.from, id: message.id, text: body.text, host: host) else {
            logLimited(.notice, "node link: room chat without a valid signature of its sender's node", kind: "room push sig", connection: nil, metadata: ["node": "\(host)"])
            return reply.send(errorMessage(SignalingError(.badSignature, "room chat of \(message.from.prefix(80)) needs its node's signature", of: message.id), to: SignalingProtocol.nodeAddress))
        }
        handle(of: target)?.send(SignalingMessage(id: message.id, from: fromHost(message.from, host: host), to: room,
                                                  payload: .chat(ChatBody(text: body.text, sent: body.sent, seq: body.seq))))
    }

    /// Whether room chat the host relays as said by `sender` (as the host writes it) may be shown
    /// as theirs. A peer of the host: the host's word (it authenticated them). A peer of this node
    /// or of a node whose key this node holds (a link up): only with that node's signature
    /// (``ChatBody/roomAttestation(room:from:id:text:)``). A peer of a node this node does not
    /// know: the host's word (docs/protocol.md "Rooms across nodes").
    private func vouched(_ sig: String?, room: String, sender: String, id: String, text: String, host: String) -> Bool {
        guard let node = Address.parse(sender)?.node, node != host else { return true }
        let own = normalise(sender).map { !$0.contains("@") } ?? false
        guard let key = own ? configuration.nodeIdentity?.publicKeyBase64 : linkKeys[node] else { return true }
        guard let sig else { return false }
        return Identity.verify(signatureBase64: sig, text: ChatBody.roomAttestation(room: room, from: sender, id: id, text: text), publicKeyBase64: key)
    }

    /// A `room` event the host pushes to a local member (or about the member itself: its own
    /// `left` ends its membership here too). The host's ack of the member's `join` comes before
    /// the `joined` event on the same link, so a member hears of its own joining.
    private func pushedEvent(_ body: RoomEventBody, message: SignalingMessage, host: String, reply: ConnectionHandle) async {
        guard let target = normalise(message.to), !target.contains("@"), Address.isValidRoom(body.room), Address.parse(body.member) != nil else {
            return reply.send(errorMessage(SignalingError(.badField, "a room event over a link names a local member in to, the host's #room and a member", of: message.id), to: SignalingProtocol.nodeAddress))
        }
        let room = "\(body.room)@\(host)"
        let member = fromHost(body.member, host: host)
        let isMember = (try? await store.isRemoteMember(target, of: room)) == true
        // Its own `left` reaches a member whose leave was acknowledged a moment before.
        guard isMember || (member == target && body.event == .left) else {
            return reply.send(errorMessage(SignalingError(.forbidden, "\(target) is not a member of \(room) as far as this node knows", of: message.id), to: SignalingProtocol.nodeAddress))
        }
        // The host may end a membership (the member left on another device, or expired there),
        // never start one: only its ack of the member's own `join` does (answered(_:of:host:)).
        if member == target, body.event == .left { try? await store.removeRemoteRoom(room, member: target) }
        handle(of: target)?.send(nodeMessage(to: target, .room(RoomEventBody(room: room, member: member, event: body.event))))
    }
}
