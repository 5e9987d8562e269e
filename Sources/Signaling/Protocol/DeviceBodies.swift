import Foundation
/// Bodies of device linking (docs/protocol.md "Devices"): a name has an owner key (the first
/// key that logged in with it) and up to ``DeviceRules/maxDevices`` keys the owner endorsed.

/// `device-code`: from the owner (body `{}`), asks for a link code; from the node, answers it
/// with the code and how many seconds it lives.
public struct DeviceCodeBody: Codable, Sendable, Equatable {
    /// Six decimal digits (node → client).
    public var code: String?
    /// Seconds until the code expires (node → client).
    public var expires: Double?
    /// The request this answers (node → client).
    public var of: String?

    public init(code: String? = nil, expires: Double? = nil, of: String? = nil) {
        self.code = code
        self.expires = expires
        self.of = of
    }
}

/// `device-claim`, a new device → node before login: "I typed this code for this name; here is
/// my key". The node asks the name's owner to endorse the key.
public struct DeviceClaimBody: Codable, Sendable, Equatable {
    public var name: String
    public var code: String
    /// The new device's Ed25519 public key, base64.
    public var key: String

    public init(name: String, code: String, key: String) {
        self.name = name
        self.code = code
        self.key = key
    }
}

/// `device-request`, node → the owner's devices: a device typed the owner's code and asks to be
/// endorsed. `claim` is the claim's id, to show and to name in `endorse`.
public struct DeviceRequestBody: Codable, Sendable, Equatable {
    public var name: String
    public var key: String
    public var claim: String

    public init(name: String, key: String, claim: String) {
        self.name = name
        self.key = key
        self.claim = claim
    }
}

/// `endorse`, owner → node: the owner's signature of ``DeviceRules/endorsementText(name:key:)``.
/// The node checks it against the owner key it holds for the name (by key, never by name).
public struct EndorseBody: Codable, Sendable, Equatable {
    public var key: String
    public var sig: String

    public init(key: String, sig: String) {
        self.key = key
        self.sig = sig
    }
}

/// `device-added`, node → the claiming device: the owner endorsed its key; it may log in now.
public struct DeviceAddedBody: Codable, Sendable, Equatable {
    public var name: String
    public var key: String
    /// The owner's key, which peers pin for the name.
    public var owner: String
    /// The owner's signature of the endorsement text for this key.
    public var endorsement: String
    /// The claim this answers.
    public var of: String?

    public init(name: String, key: String, owner: String, endorsement: String, of: String? = nil) {
        self.name = name
        self.key = key
        self.owner = owner
        self.endorsement = endorsement
        self.of = of
    }
}

/// One key of a name, in `devices`.
public struct DeviceEntry: Codable, Sendable, Equatable {
    public var key: String
    /// True for the owner key (the first that logged in with the name).
    public var owner: Bool
    /// Unix seconds when it was bound or endorsed.
    public var added: Double
    /// Whether a connection with this key is logged in now.
    public var online: Bool

    public init(key: String, owner: Bool, added: Double, online: Bool) {
        self.key = key
        self.owner = owner
        self.added = added
        self.online = online
    }
}

/// `devices`: from a client (body `{}`), asks for the name's keys; from the node, lists them.
public struct DevicesBody: Codable, Sendable, Equatable {
    public var devices: [DeviceEntry]?
    public var of: String?

    public init(devices: [DeviceEntry]? = nil, of: String? = nil) {
        self.devices = devices
        self.of = of
    }
}

/// `revoke`, owner → node: the key may not log in again and its connections are closed. Also
/// refuses a pending claim of that key.
public struct RevokeBody: Codable, Sendable, Equatable {
    public var key: String
    public init(key: String) { self.key = key }
}

/// `answered-elsewhere`, node → the callee's other devices: another device of the same name
/// answered (`accept` or `reject`) the call that rings here; stop ringing.
public struct AnsweredElsewhereBody: Codable, Sendable, Equatable {
    public var call: String
    /// `accept` or `reject`.
    public var answer: String

    public init(call: String, answer: String) {
        self.call = call
        self.answer = answer
    }
}

/// The device-linking messages as one payload case, so that a switch over every message
/// handles them in one place (SignalingHub+Devices.swift, the client).
public enum DevicePayload: Sendable, Equatable {
    case code(DeviceCodeBody)
    case claim(DeviceClaimBody)
    case request(DeviceRequestBody)
    case endorse(EndorseBody)
    case added(DeviceAddedBody)
    case devices(DevicesBody)
    case revoke(RevokeBody)
    case answeredElsewhere(AnsweredElsewhereBody)

    public var type: MessageType {
        switch self {
        case .code: .deviceCode
        case .claim: .deviceClaim
        case .request: .deviceRequest
        case .endorse: .endorse
        case .added: .deviceAdded
        case .devices: .devices
        case .revoke: .revoke
        case .answeredElsewhere: .answeredElsewhere
        }
    }
}
