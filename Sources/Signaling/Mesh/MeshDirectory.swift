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
    /// Nodes and tombstones (nodes that left) held at once, from all links together.
    public static let maximumNodes = 1000
    /// Nodes and tombstones one link may bring: no single link fills the directory.
    public static let maximumPerLink = maximumNodes / 2
    /// Records waiting for this node to prove their address (dial-back), in all and per link.
    public static let maximumUnproven = 64
    public static let maximumUnprovenPerLink = 8

    /// This node's own address and key: records claiming either are refused.
    public let ownNode: String
    public let ownKey: String
    /// The node keys allowed in a closed mesh (`--mesh-key`); nil: any key (an open mesh).
    public let allowedKeys: Set<String>?
    public private(set) var entries: [String: Entry] = [:]
    /// Keys of nodes that left → the seq of their leaving record, until it would have expired,
    /// so that an older copy still travelling does not bring the node back. Tombstones take
    /// places of the directory like live records (the link they came over pays for them).
    private var departed: [String: (seq: Int, until: Double, via: String?)] = [:]
    /// Valid records whose address this node has not proven yet, by key: never used (not
    /// probed, not a relay, not a member for TURN credentials, not passed on) until proven.
    public private(set) var unproven: [String: Entry] = [:]

    public init(ownNode: String, ownKey: String, allowedKeys: Set<String>? = nil) {
        self.ownNode = ownNode
        self.ownKey = ownKey
        self.allowedKeys = allowedKeys
    }

    /// Live records, sorted by node address.
    public var records: [NodeRecord] { entries.values.map(\.record).sorted { $0.node < $1.node } }

    /// Places taken: live records and tombstones.
    public var count: Int { entries.count + departed.count }

    /// Checks a record and files it. `pinnedKey` is the key this node has bound the record's
    /// address to (from a link), if any. The caller has proven that the record's key holds its
    /// address (docs/mesh.md "Proven addresses"); `hold` is for records not proven yet.
    public mutating func accept(_ signed: SignedNodeRecord, via link: String?, pinnedKey: String?, now: Date = Date()) -> Outcome {
        let record: NodeRecord
        do {
            record = try check(signed, pinnedKey: pinnedKey, now: now)
        } catch {
            return .rejected(error)
        }
        if record.key == ownKey { return .unchanged }
        unproven[record.key] = nil
        if let gone = departed[record.key], record.seq <= gone.seq { return .unchanged }
        if let known = entries[record.key] {
            guard record.seq > known.record.seq else { return .unchanged }
        } else if record.leaving == true {
            // A node never held here leaves no tombstone: nothing to keep from coming back.
            return .unchanged
        } else if let refusal = makeRoom(for: link) {
            return .rejected(refusal)
        }
        if record.leaving == true {
            let existed = entries.removeValue(forKey: record.key) != nil
            departed[record.key] = (record.seq, record.expires, link)
            return existed ? .left(record) : .unchanged
        }
        let fresh = entries[record.key] == nil
        entries[record.key] = Entry(record: record, signed: signed, via: link, received: now)
        departed[record.key] = nil
        return fresh ? .added(record) : .updated(record)
    }

    /// Keeps a valid record whose address is not proven yet, within its own small budget (the
    /// oldest of the same link, or of the link holding most, makes way). Returns the record, or
    /// the reason it is not kept.
    public mutating func hold(_ signed: SignedNodeRecord, via link: String?, pinnedKey: String?, now: Date = Date()) -> Result<NodeRecord, MeshRecordRejection> {
        let record: NodeRecord
        do {
            record = try check(signed, pinnedKey: pinnedKey, now: now)
        } catch {
            return .failure(error)
        }
        if let held = unproven[record.key], held.record.seq >= record.seq { return .success(held.record) }
        if unproven[record.key] == nil {
            let mine = unproven.values.filter { $0.via == link }
            if mine.count >= Self.maximumUnprovenPerLink, let oldest = mine.min(by: { $0.received < $1.received }) {
                unproven[oldest.record.key] = nil
            } else if unproven.count >= Self.maximumUnproven {
                let byLink = Dictionary(grouping: unproven.values, by: \.via)
                if let biggest = byLink.max(by: { $0.value.count < $1.value.count }), let oldest = biggest.value.min(by: { $0.received < $1.received }) {
                    unproven[oldest.record.key] = nil
                }
            }
        }
        unproven[record.key] = Entry(record: record, signed: signed, via: link, received: now)
        return .success(record)
    }

    /// Forgets a record waiting for proof (its proof failed, or the address was proven for
    /// another key).
    public mutating func release(key: String) {
        unproven[key] = nil
    }

    /// Forgets records waiting for proof that claim `node` with a key other than `key`: the
    /// node at that address proved `key`.
    public mutating func releaseUnproven(node: String, except key: String) {
        unproven = unproven.filter { $0.value.record.node != node || $0.key == key }
    }

    /// Makes a place for a new node from `link`: refuses when that link holds its share, and
    /// when the directory is full evicts from the link holding the most (tombstones first,
    /// then the record that expires soonest), so that a link with fewer always gets in.
    private mutating func makeRoom(for link: String?) -> MeshRecordRejection? {
        var held: [String?: Int] = [:]
        for entry in entries.values { held[entry.via, default: 0] += 1 }
        for tombstone in departed.values { held[tombstone.via, default: 0] += 1 }
        let mine = held[link] ?? 0
        guard mine < Self.maximumPerLink else {
            return MeshRecordRejection(.full, "the link from \(link ?? "this node") brought \(mine) nodes already, its share of \(Self.maximumNodes)")
        }
        guard count >= Self.maximumNodes else { return nil }
        guard let top = held.max(by: { $0.value < $1.value }), top.value > mine + 1 else {
            return MeshRecordRejection(.full, "the directory holds \(Self.maximumNodes) nodes already")
        }
        let biggest = top.key
        if let tombstone = departed.filter({ $0.value.via == biggest }).min(by: { $0.value.until < $1.value.until }) {
            departed[tombstone.key] = nil
        } else if let victim = entries.values.filter({ $0.via == biggest }).min(by: { $0.record.expires < $1.record.expires }) {
            entries[victim.record.key] = nil
        }
        return nil
    }

    /// The checks of `verify`, then the ones that need this directory: the allow-list, this
    /// node's own address, pinned keys and live records of other keys.
    private func check(_ signed: SignedNodeRecord, pinnedKey: String?, now: Date) throws(MeshRecordRejection) -> NodeRecord {
        let record = try Self.verify(signed, now: now)
        if record.key == ownKey { return record }
        if let allowedKeys, !allowedKeys.contains(record.key) {
            throw MeshRecordRejection(.notAllowed, "the key \(record.key.prefix(12))… is not one of this node's mesh keys")
        }
        guard record.node != ownNode else {
            throw MeshRecordRejection(.impersonation, "the record claims this node's own address \(ownNode) with another key")
        }
        if let pinnedKey, pinnedKey != record.key {
            throw MeshRecordRejection(.addressTaken, "\(record.node) is linked here with another key")
        }
        if let holder = entries.values.first(where: { $0.record.node == record.node && $0.record.key != record.key }) {
            throw MeshRecordRejection(.addressTaken, "\(record.node) is held by the live record of key \(holder.record.key.prefix(12))…")
        }
        return record
    }

    /// Drops records past their expiry; returns them.
    public mutating func expire(now: Date = Date()) -> [NodeRecord] {
        let time = now.timeIntervalSince1970
        let old = entries.values.filter { $0.record.expires <= time }.map(\.record)
        for record in old { entries[record.key] = nil }
        departed = departed.filter { $0.value.until > time }
        unproven = unproven.filter { $0.value.record.expires > time }
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
