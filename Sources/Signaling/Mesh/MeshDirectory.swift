import Foundation
import STUN

/// The mesh as one node knows it: the newest valid record of every other node, checked on the
/// way in, dropped at expiry or when its node leaves (docs/mesh.md). Pure: time and pinned keys
/// come from the caller, so every rule is tested without sockets.
public struct MeshDirectory: Sendable {
    /// One known node.
    public struct Entry: Sendable, Equatable {
        public var record: NodeRecord
        public var signed: SignedNodeRecord
        /// The link it last came over (nil for records handed in locally).
        public var via: String?
        public var received: Date
    }

    /// What happened to an incoming record.
    public enum Outcome: Sendable, Equatable {
        /// A node not known before, or a newer record of a known one: pass it on.
        case added(NodeRecord)
        case updated(NodeRecord)
        /// The node said it is leaving: dropped, pass it on.
        case left(NodeRecord)
        /// A record already known or older than the one held (gossip brings each many times).
        case unchanged
        case rejected(MeshRecordRejection)
    }

    /// A node may not make its record live longer than this (seconds): a leaked record cannot
    /// keep a dead node in the mesh for long.
    public static let maximumLifetime: Double = 600
    /// Records larger than this are refused before parsing.
    public static let maximumPayloadBytes = 8 * 1024
    public static let maximumNodes = 1000

    /// This node's own address and key: records claiming either are refused.
    public let ownNode: String
    public let ownKey: String
    public private(set) var entries: [String: Entry] = [:]
    /// Keys of nodes that left → the seq of their leaving record, until it would have expired,
    /// so that an older copy still travelling does not bring the node back.
    private var departed: [String: (seq: Int, until: Double)] = [:]

    public init(ownNode: String, ownKey: String) {
        self.ownNode = ownNode
        self.ownKey = ownKey
    }

    /// Live records, sorted by node address.
    public var records: [NodeRecord] { entries.values.map(\.record).sorted { $0.node < $1.node } }

    /// Checks a record and files it. `pinnedKey` is the key this node has bound the record's
    /// address to (from a link), if any.
    public mutating func accept(_ signed: SignedNodeRecord, via link: String?, pinnedKey: String?, now: Date = Date()) -> Outcome {
        let record: NodeRecord
        do {
            record = try Self.verify(signed, now: now)
        } catch {
            return .rejected(error)
        }
        if record.key == ownKey {
            // Our own record coming back around is normal; anything else with our key is not.
            return .unchanged
        }
        guard record.node != ownNode else {
            return .rejected(MeshRecordRejection(.impersonation, "the record claims this node's own address \(ownNode) with another key"))
        }
        if let pinnedKey, pinnedKey != record.key {
            return .rejected(MeshRecordRejection(.addressTaken, "\(record.node) is linked here with another key"))
        }
        if let holder = entries.values.first(where: { $0.record.node == record.node && $0.record.key != record.key }) {
            return .rejected(MeshRecordRejection(.addressTaken, "\(record.node) is held by the live record of key \(holder.record.key.prefix(12))…"))
        }
        if let gone = departed[record.key], record.seq <= gone.seq { return .unchanged }
        if let known = entries[record.key] {
            guard record.seq > known.record.seq else { return .unchanged }
        } else if entries.count >= Self.maximumNodes, record.leaving != true {
            return .rejected(MeshRecordRejection(.full, "the directory holds \(Self.maximumNodes) nodes already"))
        }
        if record.leaving == true {
            let existed = entries.removeValue(forKey: record.key) != nil
            departed[record.key] = (record.seq, record.expires)
            return existed ? .left(record) : .unchanged
        }
        let fresh = entries[record.key] == nil
        entries[record.key] = Entry(record: record, signed: signed, via: link, received: now)
        departed[record.key] = nil
        return fresh ? .added(record) : .updated(record)
    }

    /// Drops records past their expiry; returns them.
    public mutating func expire(now: Date = Date()) -> [NodeRecord] {
        let time = now.timeIntervalSince1970
        let old = entries.values.filter { $0.record.expires <= time }.map(\.record)
        for record in old { entries[record.key] = nil }
        departed = departed.filter { $0.value.until > time }
        return old
    }

    /// The checks that need nothing but the record and the time: size, JSON, signature,
    /// expiry, fields.
    public static func verify(_ signed: SignedNodeRecord, now: Date = Date()) throws(MeshRecordRejection) -> NodeRecord {
        guard signed.payload.utf8.count <= maximumPayloadBytes else {
            throw MeshRecordRejection(.malformed, "record of \(signed.payload.utf8.count) bytes; the limit is \(maximumPayloadBytes)")
        }
        let record: NodeRecord
        do {
            record = try JSONDecoder().decode(NodeRecord.self, from: Data(signed.payload.utf8))
        } catch {
            throw MeshRecordRejection(.malformed, "the payload is not a node record: \(error)")
        }
        guard Identity.decodeKey(record.key) != nil else {
            throw MeshRecordRejection(.badField, "key is not a base64 Ed25519 public key")
        }
        guard Identity.verify(signatureBase64: signed.sig, text: SignedNodeRecord.signedText(signed.payload), publicKeyBase64: record.key) else {
            throw MeshRecordRejection(.badSignature, "the signature does not verify with the record's key")
        }
        let time = now.timeIntervalSince1970
        guard record.expires > time else {
            throw MeshRecordRejection(.expired, "expired \(Int(time - record.expires)) s ago")
        }
        guard record.expires <= time + maximumLifetime + 30 else {
            throw MeshRecordRejection(.tooLongLived, "expires in \(Int(record.expires - time)) s; at most \(Int(maximumLifetime)) s are allowed")
        }
        guard Address.isValidNode(record.node) else {
            throw MeshRecordRejection(.badField, "'\(record.node.prefix(60))' is not a node address host:port")
        }
        guard record.seq >= 0, record.capacity >= 0, record.load >= 0, record.stun.count + record.turn.count <= 32, record.links.count <= 256 else {
            throw MeshRecordRejection(.badField, "negative numbers or too many URLs or links")
        }
        // Nodes publish numeric hosts: a record must not make other nodes resolve names.
        for (urls, listedAs) in [(record.stun, "STUN"), (record.turn, "TURN")] {
            for url in urls {
                guard url.utf8.count <= 200, let uri = ICEServerURI(url), uri.hostIsNumeric else {
                    throw MeshRecordRejection(.badField, "'\(url.prefix(80))' is not a STUN/TURN URL with a numeric host")
                }
                guard uri.scheme.isTURN == (listedAs == "TURN"), uri.scheme != .stuns else {
                    throw MeshRecordRejection(.badField, "'\(url.prefix(80))' is listed as \(listedAs) but is not \(listedAs == "TURN" ? "turn: or turns:" : "stun:")")
                }
            }
        }
        guard !record.relay || (record.reachability == .reachable && !record.turn.isEmpty) else {
            throw MeshRecordRejection(.badField, "a relay must be reachable and list TURN URLs")
        }
        return record
    }
}
