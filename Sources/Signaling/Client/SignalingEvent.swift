/// What a `SignalingClient` reports, in order, on its `events` stream.
public enum SignalingEvent: Sendable, Equatable {
    /// The first login succeeded.
    case connected(WelcomeBody)
    /// The connection to the node was lost; the client reconnects on its own.
    case disconnected(reason: String)
    /// Logged in again after a `disconnected`; subscriptions and unacknowledged messages were resent.
    case reconnected(WelcomeBody)
    case presence(PresenceBody)
    /// A chat message, once per sender and id even when the node delivers it again.
    case chat(ChatMessage)
    case room(RoomEventBody)
    /// A call-setup message whose signature verified against the sender's pinned key.
    case callSetup(CallPayload)
    /// The node ended a call that rang unanswered.
    case callTimeout(call: String)
    /// Another device of this name answered a call that rang here (docs/protocol.md "Devices").
    case answeredElsewhere(call: String)
    /// A room call of a room this name is in changed (docs/protocol.md "Room calls"), its
    /// participants checked against the pinned keys.
    case roomCall(RoomCallState)
    /// A new device typed this name's link code and asks to be endorsed (to the owner key only).
    case deviceRequest(DeviceRequestBody)
    /// An error the node sent unprompted, or a message the client refused (a changed key, a bad
    /// signature); nothing was delivered for it.
    case error(SignalingError)
}

/// One delivered chat message.
public struct ChatMessage: Sendable, Equatable {
    public var id: String
    public var from: String
    /// The recipient name, or the `#room` it was sent to.
    public var to: String
    public var text: String
    /// Unix time in seconds when the node accepted it.
    public var sent: Double?
}
