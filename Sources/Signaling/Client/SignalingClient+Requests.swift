import Foundation

/// Requests of `SignalingClient`: each waits for the node's answer (`ack`, `members` or an
/// `error`) for at most `requestTimeout`.
extension SignalingClient {
    /// Sends a chat message to a peer name or a `#room` and returns once the node stored it.
    /// If the connection drops first, the message is resent with the same id after the
    /// reconnect; the node delivers it once.
    @discardableResult
    public func send(text: String, to recipient: String, id: String = UUID().uuidString) async throws -> AckStatus {
        let message = SignalingMessage(id: id, from: name, to: recipient, payload: .chat(ChatBody(text: text)))
        outbox.append(message)
        let answer = try await request(message, keepAcrossReconnect: true)
        guard case .ack(let body) = answer.payload else { return .ok }
        return body.status ?? .ok
    }

    /// Follows the presence of these names, now and after every reconnect.
    public func subscribe(_ names: [String]) async throws {
        subscriptions.formUnion(names)
        _ = try await request(outgoing(.subscribe(NamesBody(names: names))))
    }

    public func unsubscribe(_ names: [String]) async throws {
        subscriptions.subtract(names)
        _ = try await request(outgoing(.unsubscribe(NamesBody(names: names))))
    }

    /// Joins a room (membership is kept by the node across reconnects and restarts). `rule`
    /// applies when this join creates the room: this client then owns it.
    public func join(room: String, rule: RoomRule? = nil) async throws {
        _ = try await request(outgoing(.join(RoomBody(room: room, rule: rule))))
    }

    /// As the owner of an `invite` room, lets `name` join it.
    public func invite(_ name: String, to room: String) async throws {
        _ = try await request(outgoing(.invite(InviteBody(room: room, name: name))))
    }

    public func leave(room: String) async throws {
        _ = try await request(outgoing(.leave(RoomBody(room: room))))
    }

    public func members(of room: String) async throws -> [RoomMember] {
        let answer = try await request(outgoing(.members(MembersBody(room: room))))
        guard case .members(let body) = answer.payload else { return [] }
        return body.members ?? []
    }

    /// A page of a room's history (docs/protocol.md "Room history"): the messages older than
    /// `before` (the newest when nil), oldest first, and whether older ones remain.
    public func history(of room: String, before: Int? = nil, limit: Int? = nil) async throws -> (messages: [HistoryEntry], more: Bool) {
        let answer = try await request(outgoing(.history(HistoryBody(room: room, before: before, limit: limit))))
        guard case .history(let body) = answer.payload else { return ([], false) }
        return (body.messages ?? [], body.more ?? false)
    }

    /// Rings `peer`; returns the call id. The answer arrives as a `callSetup` event
    /// (accept, reject or busy) or as `callTimeout`.
    @discardableResult
    public func call(_ peer: String, kind: CallKind, ring: Int? = nil, call: String = UUID().uuidString) async throws -> String {
        try await callSetup(CallPayload(type: .call, from: name, to: peer, call: call, kind: kind, ring: ring, ts: Self.now))
        return call
    }

    /// Sends a signed call-setup message (accept, reject, busy, cancel, hangup, sdp, candidate).
    public func callSetup(_ type: CallSetupType, to peer: String, call: String, sdpType: String? = nil, sdp: String? = nil,
                          candidate: CandidateInfo? = nil, reason: String? = nil) async throws {
        try await callSetup(CallPayload(type: type, from: name, to: peer, call: call, sdpType: sdpType, sdp: sdp,
                                        candidate: candidate, reason: reason, ts: Self.now))
    }

    /// Signs `payload` and sends it; the node acknowledges after relaying it.
    public func callSetup(_ payload: CallPayload) async throws {
        let body = CallSigning.sign(payload, with: identity)
        _ = try await request(SignalingMessage(id: UUID().uuidString, from: name, to: payload.to, payload: .callSetup(payload.type, body)))
    }

    static var now: Double { Date().timeIntervalSince1970 }

    func outgoing(_ payload: SignalingPayload) -> SignalingMessage {
        SignalingMessage(id: UUID().uuidString, from: name, to: SignalingProtocol.nodeAddress, payload: payload)
    }

    /// Sends `message` and waits for the answer naming its id.
    func request(_ message: SignalingMessage, keepAcrossReconnect: Bool = false) async throws -> SignalingMessage {
        if closed { throw SignalingError(.disconnected, "the client was closed", of: message.id) }
        if !loggedIn && !keepAcrossReconnect {
            throw SignalingError(.disconnected, "not connected to the node; try again after it reconnects", of: message.id)
        }
        let id = message.id
        let timeout = requestTimeout
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            await self?.expire(id)
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            waiting[id] = continuation
            if loggedIn { transmit(message) }
        }
    }

    private func expire(_ id: String) {
        guard let continuation = waiting.removeValue(forKey: id) else { return }
        outbox.removeAll { $0.id == id }
        continuation.resume(throwing: SignalingError(.timeout, "no answer from the node within \(requestTimeout)", of: id))
    }
}
