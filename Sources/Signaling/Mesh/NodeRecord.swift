import Foundation
public import MeshCore

/// What one node says about itself to the mesh (docs/mesh.md "Node records"): its address and
/// key, where its STUN/TURN listeners are, whether another node verified them from outside,
/// how loaded it is. Signed by the node's key; spread by gossip over node links; valid until
/// `expires` unless a record with a higher `seq` replaces it.
public struct NodeRecord: Codable, Sendable, Equatable {
    /// Whether other nodes reached the node's STUN/TURN ports from outside (dial-back).
    public enum Reachability: String, Codable, Sendable {
        case reachable, unreachable, unknown
    }

    /// `host:port` of the node's HTTP endpoint, as in node links.
    public var node: String
    /// The node's Ed25519 key, base64.
    public var key: String
    /// RFC 7064 STUN URIs (`stun:198.51.100.10:3478`).
    public var stun: [String]
    /// RFC 7065 TURN URIs (`turn:198.51.100.10:3478?transport=udp`, `turns:…`).
    public var turn: [String]
    public var reachability: Reachability
    /// True only when reachable and offering TURN: other nodes may hand it out as a relay.
    public var relay: Bool
    /// Allocations the node's TURN server holds at most (total quota) and holds now.
    public var capacity: Int
    public var load: Int
    /// The meshnode version that made the record.
    public var version: String
    /// Strictly increasing per key: a node refreshes its record with a higher one.
    public var seq: Int
    /// Unix seconds after which the record is dropped unless refreshed.
    public var expires: Double
    /// The nodes it has links to now (for `meshnode status`).
    public var links: [String]
    /// A last record from a node that shuts down: drop it now rather than at expiry.
    public var leaving: Bool?

    public init(node: String, key: String, stun: [String], turn: [String], reachability: Reachability, relay: Bool,
                capacity: Int, load: Int, version: String, seq: Int, expires: Double, links: [String], leaving: Bool? = nil) {
        self.node = node
        self.key = key
        self.stun = stun
        self.turn = turn
        self.reachability = reachability
        self.relay = relay
        self.capacity = capacity
        self.load = load
        self.version = version
        self.seq = seq
        self.expires = expires
        self.links = links
        self.leaving = leaving
    }

    /// True when the relay has no allocation left to give.
    public var isFull: Bool { load >= capacity }

    /// Signs the record: the payload is its JSON text, so no canonical JSON is needed.
    public func signed(by identity: Identity) -> SignedNodeRecord {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let payload = String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
        return SignedNodeRecord(payload: payload, sig: identity.sign(text: SignedNodeRecord.signedText(payload)))
    }
}

/// A node record as it travels: the exact JSON text that was signed and the signature.
public struct SignedNodeRecord: Codable, Sendable, Equatable {
    public var payload: String
    public var sig: String

    public init(payload: String, sig: String) {
        self.payload = payload
        self.sig = sig
    }

    /// The text a node signs: a context line, then the record's JSON.
    public static func signedText(_ payload: String) -> String {
        "meshnode.v1 node-record\n" + payload
    }
}

/// Node records' refusals, a layer of errors of their own: they are logged, never sent.
public enum MeshRecordLayer: ErrorLayer { public static let name = "MeshRecordRejection" }

/// Why a node record was refused (docs/mesh.md "Rejected records"). Each is logged with the
/// record's claimed node and the link it came over.
public typealias MeshRecordRejection = LayerError<MeshRecordLayer>

extension LayerError.Code where Layer == MeshRecordLayer {
    /// Not a JSON record with every field, or a record over the size limit.
    public static let malformed = Self("malformed")
    /// The signature does not verify with the key in the record.
    public static let badSignature = Self("bad-signature")
    /// `expires` is in the past.
    public static let expired = Self("expired")
    /// `expires` is further ahead than a node may claim (`MeshDirectory.maximumLifetime`).
    public static let tooLongLived = Self("too-long-lived")
    /// An invalid node address, key, URL or number.
    public static let badField = Self("bad-field")
    /// The node address belongs to another key (a live record, or a link's key pinned here).
    public static let addressTaken = Self("address-taken")
    /// The record claims this node's own address or key.
    public static let impersonation = Self("impersonation")
    /// The directory holds as many nodes as it will, or the link brought its share.
    public static let full = Self("full")
    /// A closed mesh (`--mesh-key`): the record's key is not one of the allowed node keys.
    public static let notAllowed = Self("not-allowed")
    /// The node at the record's address did not prove the record's key (dial-back).
    public static let notProven = Self("not-proven")
}
