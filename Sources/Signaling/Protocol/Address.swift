/// Names and addresses of protocol v1 (docs/protocol.md, "Addresses").
public enum Address {
    /// A peer name: 1 to 32 characters from `A–Z a–z 0–9 . _ -`, not starting with `.` or `-`.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...32).contains(name.utf8.count), let first = name.utf8.first, first != UInt8(ascii: "."), first != UInt8(ascii: "-") else {
            return false
        }
        return name.utf8.allSatisfy(isNameByte)
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
