import Foundation

/// Room chat as the hosting node handles it (docs/protocol.md "Chat", "Room history"): each
/// message goes into the room's history and, in the same commit, into the queue of every local
/// member; it is pushed now to the members online here and, over the links, to the nodes of
/// members at other nodes. A member who was away reads what was missed from the history.
extension SignalingHub {
    /// A message from `name` (a local name, or `name@node` for a peer at a linked node) to
    /// `room`, a room of this node. `reply` is the sender's connection, or the link it came over.
    /// `body.sig`: for a peer of another node, its node's signature, checked already; kept with
    /// the message and passed on to the other members' nodes.
    func roomChat(_ body: ChatBody, id: String, room: String, name: String, reply: ConnectionHandle) async {
        do {
            let members = try await store.members(of: room)
            guard members.contains(name) else {
                return reply.send(errorMessage(SignalingError(.notMember, "join \(room) before writing to it", of: id), to: name))
            }
            let sent = Date().timeIntervalSince1970
            let text = body.text
            let local = members.filter { !$0.contains("@") && $0 != name }
            let posted = try await store.post(room: room, sender: name, id: id, text: text, sent: sent, sig: body.sig, recipients: local) { seq in
                SignalingCodec.encode(SignalingMessage(id: id, from: name, to: room, payload: .chat(ChatBody(text: text, sent: sent, seq: seq))))
            }
            reply.send(ack(id, posted.duplicate ? .duplicate : .ok, to: name))
            guard !posted.duplicate else { return }
            for recipient in posted.fresh {
                handle(of: recipient)?.send(text: posted.frame)
            }
            // Members at other nodes: their node hands it to them if they are online now; the
            // others read it from the history (nothing is stored for them there).
            for member in members where member.contains("@") && member != name {
                guard let node = Address.parse(member)?.node, let link = link(to: node) else { continue }
                link.send(SignalingMessage(id: id, from: linkAddress(name, toward: node), to: member,
                                           payload: .chat(ChatBody(text: text, sent: sent, seq: posted.seq, room: room, sig: body.sig))))
            }
        } catch {
            reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: name))
        }
    }

    /// `history` of a room of this node, for a member (`name` local, or `name@node` asking
    /// over the link from its node: then `toward` is that node, and the senders' names are
    /// written as that node sees them).
    func history(_ body: HistoryBody, id: String, name: String, reply: ConnectionHandle, toward node: String? = nil) async {
        guard let address = roomAddress(body.room) else {
            return reply.send(errorMessage(SignalingError(.badField, "a room is # followed by a valid name, or #name@host:port", of: id), to: name))
        }
        let room = address.name
        if let limit = body.limit, !(1...HistoryBody.maxLimit).contains(limit) {
            return reply.send(errorMessage(SignalingError(.badField, "history limit is 1 to \(HistoryBody.maxLimit)", of: id), to: name))
        }
        if let before = body.before, before < 1 {
            return reply.send(errorMessage(SignalingError(.badField, "history before is a seq from an earlier answer (1 or more)", of: id), to: name))
        }
        if let host = address.node {
            var relayed = body
            relayed.room = room
            return relayToHost(SignalingMessage(id: id, from: name, to: SignalingProtocol.nodeAddress, payload: .history(relayed)),
                               room: room, node: host, name: name, reply: reply)
        }
        do {
            // A room's history, like its members, is for its members only.
            guard try await store.members(of: room).contains(name) else {
                return reply.send(errorMessage(SignalingError(.notMember, "join \(room) before reading its history", of: id), to: name))
            }
            let page = try await store.history(of: room, before: body.before, limit: body.limit ?? HistoryBody.defaultLimit)
            var entries = page.entries
            for index in entries.indices {
                // Signatures are for nodes: a local member's client gets none.
                if let node { entries[index].from = linkAddress(entries[index].from, toward: node) } else { entries[index].sig = nil }
            }
            reply.send(nodeMessage(to: name, .history(HistoryBody(room: room, messages: entries, more: page.more, of: id))))
        } catch {
            reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: name))
        }
    }

    /// A name as written over the link to `node`: a local name qualified with this node's
    /// address (as that node knows it), any other address as it is.
    func linkAddress(_ name: String, toward node: String) -> String {
        name.contains("@") ? name : qualified(name, toward: node)
    }
}
