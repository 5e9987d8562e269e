import Synchronization

/// WebSocket connections per source address (setting `max-connections-per-ip`), so that one
/// host cannot take the node's whole connection budget. IPv6 sources count by their /64, which
/// one subscriber usually holds whole. The table holds only sources with open connections: an
/// entry goes when its last connection closes, so it is bounded by the connection budget.
public final class SourceLimit: Sendable {
    /// Connections one source may hold at once.
    public let maximum: Int
    private let counts = Mutex<[String: Int]>([:])

    /// Generous by default: a whole office or a carrier NAT may share one address.
    public static let defaultMaximum = 256

    public init(maximum: Int = SourceLimit.defaultMaximum) {
        self.maximum = max(1, maximum)
    }

    /// Takes a place for `source` (an IP address as text); false when it holds its maximum.
    /// Every `true` is paired with one ``release(_:)`` of the same source.
    public func acquire(_ source: String) -> Bool {
        let key = Self.key(source)
        return counts.withLock { counts in
            guard counts[key, default: 0] < maximum else { return false }
            counts[key, default: 0] += 1
            return true
        }
    }

    /// Gives back a place taken with ``acquire(_:)``.
    public func release(_ source: String) {
        let key = Self.key(source)
        counts.withLock { counts in
            guard let held = counts[key] else { return }
            counts[key] = held > 1 ? held - 1 : nil
        }
    }

    /// Connections `source` holds now.
    public func held(by source: String) -> Int { counts.withLock { $0[Self.key(source)] ?? 0 } }

    /// An IPv4 address as it is; an IPv6 address by its first four groups (its /64).
    static func key(_ source: String) -> String {
        guard source.contains(":") else { return source }
        var groups = source.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        // Expand "::" so that the first four groups are the /64 prefix.
        if let gap = groups.firstIndex(of: ""), source.contains("::") {
            let present = groups.filter { !$0.isEmpty }
            let missing = max(0, 8 - present.count)
            groups = Array(groups[..<gap]).filter { !$0.isEmpty } + Array(repeating: "0", count: missing)
                + Array(groups[(gap + 1)...]).filter { !$0.isEmpty }
        }
        return groups.prefix(4).map { $0.isEmpty ? "0" : $0.lowercased() }.joined(separator: ":") + "::/64"
    }
}
