import Foundation

/// The chat fast path (issue 17): a logged-in client's `chat` to a peer of this node and its
/// peers' `ack`s are handled on the connection's event loop — one scan of the frame
/// (``ChatEnvelope``), the rate limit, one store write — and answered from the store's thread
/// once the write committed: no task, no turn of the hub's actor, no `JSONDecoder` or
/// `JSONEncoder`. A logged-in client's `ping` is answered here too, at once: its `pong` needs
/// nothing from the store, so it may go out before the acks of chats still being written. It does what ``chat(_:message:name:reply:)`` and ``recipientAck(_:name:reply:)``
/// do for the same frames, with the same answers; every other frame, and every one of these
/// that would be refused, takes the hub's path (``receive(_:on:)``), which gives the refusal its
/// code and reason. Messages are acknowledged only once durable (group commit, StoreWriter).
extension SignalingHub {
    /// Handles `text` from `connection` if it is a frame of the fast path, and returns true;
    /// `answered` is called exactly once, on the store's thread when the frame's write has
    /// been answered (for a `ping`, before this returns, on the caller's thread), with the frame to send back to the connection (its `ack` or `error`) if
    /// any. Returns false, having changed nothing, when the frame must go to
    /// ``receive(_:on:)`` instead.
    nonisolated func receiveFast(_ text: String, on connection: ConnectionHandle,
                                 answered: @escaping @Sendable (_ reply: String?) -> Void) -> Bool {
        guard routes.isEnabled, let name = connection.gate.chatName, let envelope = ChatEnvelope.scan(text),
              envelope.from.isEmpty || envelope.from == name else { return false }
        switch envelope.kind {
        case .ping:
            guard connection.gate.admit(now: now()) else { return false }
            answered(ChatFrames.pong(id: envelope.id, to: name))
        case .chat(let body):
            // A room, a peer of another node, a name never seen here, an oversized text: the hub.
            guard body.utf8.count <= configuration.maxChatBytes, !envelope.to.hasPrefix("#"),
                  let target = normalise(envelope.to), !target.contains("@"),
                  store.cachedKey(of: target) != nil else { return false }
            // Over the limit: the hub drops it and says so (it counts the frame again, and
            // refuses it again but for the few µs between the two).
            guard connection.gate.admit(now: now()) else { return false }
            chat(body, id: envelope.id, name: name, to: target, answered: answered)
        case .ack(let of, _, let sender):
            guard let sender else { return false }
            guard connection.gate.admit(now: now()) else { return false }
            store.markDelivered(recipient: name, sender: sender, id: of) { result in
                // As ``recipientAck(_:name:reply:)``: only a failure answers.
                if case .failure(let error) = result {
                    answered(SignalingCodec.encode(self.errorMessage(error, to: name)))
                } else {
                    answered(nil)
                }
            }
        }
        return true
    }

    /// Stores a chat of `name` to the local peer `target` and, once durable, acks it to the
    /// sender and delivers it to the connections `target` is online on *then* (a peer that
    /// logged in meanwhile gets it, as one that was offline gets it at login).
    private nonisolated func chat(_ text: String, id: String, name: String, to target: String,
                                  answered: @escaping @Sendable (_ reply: String?) -> Void) {
        let frame = ChatFrames.delivery(id: id, from: name, to: target, text: text, sent: Date().timeIntervalSince1970)
        let routes = routes
        store.enqueueChat(sender: name, id: id, recipients: [target], frame: frame) { result in
            switch result {
            case .success(.duplicate):
                answered(ChatFrames.ack(of: id, status: .duplicate, to: name, id: NodeMessageID.next()))
            case .success(.stored(let fresh)):
                answered(ChatFrames.ack(of: id, status: .ok, to: name, id: NodeMessageID.next()))
                if fresh.contains(target) {
                    for recipient in routes.connections(of: target) { recipient.send(text: frame) }
                }
            case .failure(let error):
                answered(SignalingCodec.encode(self.errorMessage(SignalingError(error.code, error.reason, of: id), to: name)))
            }
        }
    }
}
