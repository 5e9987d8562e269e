import Foundation

/// Chat to a peer or a room (docs/protocol.md "Chat", "Delivery guarantees"): stored per
/// recipient before the `ack`, delivered now to those online and at login to the others,
/// forgotten only when the recipient acknowledges it. A resent id is acknowledged as
/// `duplicate` and not delivered again. Room chat also goes into the room's history
/// (SignalingHub+RoomHistory.swift).
extension SignalingHub {
    func chat(_ body: ChatBody, message: SignalingMessage, name: String, reply: ConnectionHandle) async {
        let id = message.id
        guard body.text.utf8.count <= configuration.maxChatBytes else {
            return reply.send(errorMessage(SignalingError(.tooLarge, "chat text over \(configuration.maxChatBytes) bytes", of: id), to: name))
        }
        let to = message.to
        let recipients: [String]
        do {
            if to.hasPrefix("#") {
                guard let room = roomAddress(to) else {
                    return reply.send(errorMessage(SignalingError(.badField, "'\(to.prefix(40))' is not a valid room", of: id), to: name))
                }
                // A room of another node: that node keeps it; this one relays (SignalingHub+RemoteRooms.swift).
                if let node = room.node {
                    return relayToHost(SignalingMessage(id: id, from: name, to: room.name, payload: .chat(ChatBody(text: body.text))),
                                       room: room.name, node: node, name: name, reply: reply)
                }
                return await roomChat(body, id: id, room: room.name, name: name, reply: reply)
            } else {
                guard let target = normalise(to) else {
                    return reply.send(errorMessage(SignalingError(.badField, "'\(to.prefix(40))' is not a valid name, name@host:port or #room", of: id), to: name))
                }
                if let node = Address.parse(target)?.node {
                    return await remoteChat(body, id: id, name: name, to: target, node: node, reply: reply)
                }
                // The cache answers without leaving the actor; only a name not cached yet awaits a read.
                if store.cachedKey(of: target) == nil {
                    guard try await store.key(of: target) != nil else {
                        return reply.send(errorMessage(SignalingError(.unknownRecipient, "\(target) has never logged in at this node", of: id), to: name))
                    }
                }
                recipients = [target]
            }
            let delivered = SignalingMessage(id: id, from: name, to: recipients[0],
                                             payload: .chat(ChatBody(text: body.text, sent: Date().timeIntervalSince1970)))
            let text = SignalingCodec.encode(delivered)
            // The recipient's connections as of now; the write's answer (on the store's thread)
            // acks and delivers without coming back to the hub, so a chat costs the hub one turn.
            // A recipient that was offline is looked up again after the commit: it may have
            // logged in meanwhile, after its login read what was stored.
            let online = recipients.map { (name: $0, connections: handle(of: $0)) }
            let write = PendingWrite()
            writes[reply.id] = write
            store.enqueueChat(sender: name, id: id, recipients: recipients, frame: text) { [self] result in
                defer { write.finish() }
                switch result {
                case .success(.duplicate):
                    reply.send(ack(id, .duplicate, to: name))
                case .success(.stored(let fresh)):
                    reply.send(ack(id, .ok, to: name))
                    for recipient in online where fresh.contains(recipient.name) {
                        if let connections = recipient.connections {
                            connections.send(text: text)
                        } else {
                            Task { await self.handle(of: recipient.name)?.send(text: text) }
                        }
                    }
                case .failure(let error):
                    reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: name))
                }
            }
        } catch {
            reply.send(errorMessage(SignalingError(error.code, error.reason, of: id), to: name))
        }
    }

    /// The recipient confirms a delivered message; it will not be delivered again.
    func recipientAck(_ body: AckBody, name: String, reply: ConnectionHandle) async {
        guard let sender = body.sender else {
            return reply.send(errorMessage(SignalingError(.badField, "an ack from a client names the sender of the message it confirms"), to: name))
        }
        // Awaited by the connection outside the hub (``receive(_:on:)``); only a failure answers.
        let write = PendingWrite()
        writes[reply.id] = write
        store.markDelivered(recipient: name, sender: sender, id: body.of) { [self] result in
            if case .failure(let error) = result { reply.send(errorMessage(error, to: name)) }
            write.finish()
        }
    }
}
