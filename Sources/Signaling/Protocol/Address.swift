/// Names and addresses of protocol v1 (docs/protocol.md, "Addresses").
public enum Address {
    /// A peer name: 1 to 32 characters from `A–Z a–z 0–9 . _ -`, not starting with `.` or `-`.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...32).contains(name.utf8.count), let first = name.utf8.first, first != UInt8(ascii: "."), first != UInt8(ascii: "-") else {
            return false
        }
        return name.utf8.allSatisfy(isNameByte)
    }

    /// A peer's address: a bare `name` (at this node) or `name@host:port` (at the node whose
    /// HTTP endpoint is `host:port`). Nil when it is neither.
    public static func parse(_ address: String) -> (name: String, node: String?)? {
        guard let at = address.firstIndex(of: "@") else {
            return isValidName(address) ? (address, nil) : nil
        }
        let name = String(address[..<at])
        let node = String(address[address.index(after: at)...])
        guard isValidName(name), isValidNode(node) else { return nil }
        return (name, node)
    }

    /// The name part of an address: `alice` for `alice` and for `alice@host:port`.
    public static func bareName(_ address: String) -> String {
        String(address.prefix { $0 != "@" })
    }

    /// A node address: `host:port`, `[v6]:port`; at most 255 characters, no spaces or `@`.
    public static func isValidNode(_ node: String) -> Bool {
        guard (3...255).contains(node.utf8.count), let colon = node.lastIndex(of: ":"),
              let port = Int(node[node.index(after: colon)...]), (1...65_535).contains(port) else { return false }
        let host = node[..<colon]
        return !host.isEmpty && !host.contains(where: { $0 == "@" || $0 == "/" || $0 == "#" || $0.isWhitespace })
    }

    /// A room: `#` followed by a valid name.
    public static func isValidRoom(_ room: String) -> Bool {
        room.hasPrefix("#") && isValidName(String(room.dropFirst()))
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}
