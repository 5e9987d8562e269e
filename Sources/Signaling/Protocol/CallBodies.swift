/// Bodies of call setup (docs/protocol.md, "Call setup"). Every call-setup message carries a
/// `SignedBody`; its payload is a `CallPayload` as JSON text.

/// The call-setup message types; all are signed end to end by their sender.
public enum CallSetupType: String, Codable, Sendable, CaseIterable {
    case call, accept, reject, cancel, busy, hangup, sdp, candidate
}

/// What a call carries.
public enum CallKind: String, Codable, Sendable {
    case audio, video, desktop
}

/// One trickled ICE candidate, as in WebRTC's `RTCIceCandidateInit`.
public struct CandidateInfo: Codable, Sendable, Equatable {
    public var candidate: String
    public var sdpMid: String?
    public var sdpMLineIndex: Int?

    public init(candidate: String, sdpMid: String? = nil, sdpMLineIndex: Int? = nil) {
        self.candidate = candidate
        self.sdpMid = sdpMid
        self.sdpMLineIndex = sdpMLineIndex
    }
}

/// The signed content of a call-setup message. `type`, `from` and `to` repeat the envelope so
/// that a node cannot replay a signed body as another message or to another peer.
public struct CallPayload: Codable, Sendable, Equatable {
    public var type: CallSetupType
    public var from: String
    public var to: String
    /// The call's id, chosen by the caller; the same in every message of one call.
    public var call: String
    /// `call` only.
    public var kind: CallKind?
    /// `call` only: seconds the node lets it ring before sending `timeout` (1–120, default 30).
    public var ring: Int?
    /// `sdp` only: "offer" or "answer" and the SDP text.
    public var sdpType: String?
    public var sdp: String?
    /// `candidate` only.
    public var candidate: CandidateInfo?
    /// `reject` and `hangup`: an optional reason for humans.
    public var reason: String?
    /// `call` only, for a pairwise call of a room call (docs/rooms.md): the room and the room
    /// call's id. The node relays such a call only between two participants of that room call.
    public var room: String?
    public var roomCall: String?
    /// Unix time in seconds when the sender signed it; receivers refuse it outside ±120 s of
    /// their clock (``CallFreshness``).
    public var ts: Double
    /// The key the signature verified against, set by the receiving client. Not signed and not
    /// encoded: it tells the peer which key a call is bound to (docs/protocol.md "Call setup").
    public var key: String?

    enum CodingKeys: String, CodingKey {
        case type, from, to, call, kind, ring, sdpType, sdp, candidate, reason, room, roomCall, ts
    }

    public init(type: CallSetupType, from: String, to: String, call: String, kind: CallKind? = nil, ring: Int? = nil,
                sdpType: String? = nil, sdp: String? = nil, candidate: CandidateInfo? = nil, reason: String? = nil, ts: Double) {
        self.type = type
        self.from = from
        self.to = to
        self.call = call
        self.kind = kind
        self.ring = ring
        self.sdpType = sdpType
        self.sdp = sdp
        self.candidate = candidate
        self.reason = reason
        self.ts = ts
    }
}

/// The body of every call-setup message: the payload as the exact JSON text that was signed,
/// the sender's Ed25519 public key and the signature of `"meshnode.v1 call-setup\n" + payload`.
public struct SignedBody: Codable, Sendable, Equatable {
    public var payload: String
    public var key: String
    public var sig: String
    /// Set by the sender's node when `key` is a linked device's: the name's owner key and its
    /// endorsement of `key`; receivers pin `owner` and check the endorsement against it
    /// (docs/protocol.md "Devices"). Not part of what `sig` signs.
    public var owner: String?
    public var endorsement: String?

    public init(payload: String, key: String, sig: String) {
        self.payload = payload
        self.key = key
        self.sig = sig
    }
}

/// `timeout`, node → caller and callee: the call rang for its `ring` seconds unanswered.
public struct TimeoutBody: Codable, Sendable, Equatable {
    public var call: String
    public init(call: String) { self.call = call }
}
