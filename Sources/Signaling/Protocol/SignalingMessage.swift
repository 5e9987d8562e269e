/// One message of protocol v1 (DESIGN.md, "Signaling protocol"): the envelope fields `id`,
/// `from`, `to` and a typed payload that gives the `type` and the `body`.
public struct SignalingMessage: Sendable, Equatable {
    /// Chosen by the sender; at most 64 characters. Chat ids make resends idempotent.
    public var id: String
    /// The sender's name, `@node` for the node, empty from a client that has not logged in.
    public var from: String
    /// A name, `#room`, `@node` or empty (to the node).
    public var to: String
    public var payload: SignalingPayload

    public init(id: String, from: String, to: String, payload: SignalingPayload) {
        self.id = id
        self.from = from
        self.to = to
        self.payload = payload
    }

    public var type: MessageType { payload.type }
}

/// The `type` field: every message kind of protocol v1.
public enum MessageType: String, Sendable, CaseIterable, Codable {
    case challenge, login, welcome, ping, pong
    case subscribe, unsubscribe, presence
    case join, leave, members, room, invite, history
    case chat, ack, error
    case call, accept, reject, cancel, busy, hangup, sdp, candidate
    case timeout
    case link, linked
    case mesh, dialback
    case dialbackResult = "dialback-result"
    case prove, proof
    case deviceCode = "device-code", deviceClaim = "device-claim", deviceRequest = "device-request"
    case deviceAdded = "device-added", endorse, devices, revoke
    case answeredElsewhere = "answered-elsewhere"
    case roomCall = "room-call", roomCallState = "room-call-state"

    /// The call-setup type this is, if it is one.
    public var callSetup: CallSetupType? { CallSetupType(rawValue: rawValue) }
}

/// A message's type with its decoded body.
public enum SignalingPayload: Sendable, Equatable {
    case challenge(ChallengeBody)
    case login(LoginBody)
    case welcome(WelcomeBody)
    case ping
    case pong
    case subscribe(NamesBody)
    case unsubscribe(NamesBody)
    case presence(PresenceBody)
    case join(RoomBody)
    case leave(RoomBody)
    case members(MembersBody)
    case room(RoomEventBody)
    case invite(InviteBody)
    case history(HistoryBody)
    case chat(ChatBody)
    case ack(AckBody)
    case error(ErrorBody)
    case callSetup(CallSetupType, SignedBody)
    case timeout(TimeoutBody)
    case link(LinkBody)
    case linked(LinkedBody)
    case mesh(MeshBody)
    case dialback(DialbackBody)
    case dialbackResult(DialbackResultBody)
    case prove(ProveBody)
    case proof(ProofBody)
    /// Device linking (DeviceBodies.swift).
    case device(DevicePayload)
    /// Room calls (RoomCallBodies.swift).
    case roomCall(RoomCallMessage)

    public var type: MessageType {
        switch self {
        case .challenge: .challenge
        case .login: .login
        case .welcome: .welcome
        case .ping: .ping
        case .pong: .pong
        case .subscribe: .subscribe
        case .unsubscribe: .unsubscribe
        case .presence: .presence
        case .join: .join
        case .leave: .leave
        case .members: .members
        case .room: .room
        case .invite: .invite
        case .history: .history
        case .chat: .chat
        case .ack: .ack
        case .error: .error
        case .callSetup(let kind, _): MessageType(rawValue: kind.rawValue)!
        case .timeout: .timeout
        case .link: .link
        case .linked: .linked
        case .mesh: .mesh
        case .dialback: .dialback
        case .dialbackResult: .dialbackResult
        case .prove: .prove
        case .proof: .proof
        case .device(let device): device.type
        case .roomCall(let message): message.type
        }
    }
}
