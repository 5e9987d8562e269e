import Foundation

/// The rules of device linking (docs/protocol.md "Devices"): what an endorsement signs and the
/// bounds of everything keyed by outside input.
public enum DeviceRules {
    /// Keys a name may have besides its owner key.
    public static let maxDevices = 7
    /// A link code lives this long: long enough to read six digits off one screen and type
    /// them on another, short enough that an unused code is not a standing way in.
    public static let codeLifetime: Duration = .seconds(300)
    /// Wrong codes tried against one code before it is void. With 10^6 codes, a guesser's
    /// chance per code is 5 in a million; the owner makes a new code after a void one.
    public static let maxAttempts = 5
    /// Link codes pending at once on a node (one per name).
    public static let maxPendingCodes = 1024
    /// Wrong claims the whole node answers: `claimRate` a second, bursts of `claimBurst`; beyond
    /// that a claim is refused unread (`rate-limited`), so a flood over many names or
    /// connections cannot try codes faster than this.
    public static let claimRate = 2.0
    public static let claimBurst = 20.0

    /// The text the owner key signs to endorse `key` for `name`: a context line of its own, so
    /// that no login or call signature can pass for an endorsement.
    public static func endorsementText(name: String, key: String) -> String {
        "meshnode.v1 device\n\(name)\n\(key)"
    }

    /// True when `endorsement` is the owner key's signature of `key` for `name`.
    public static func verify(endorsement: String, name: String, key: String, owner: String) -> Bool {
        Identity.verify(signatureBase64: endorsement, text: endorsementText(name: name, key: key), publicKeyBase64: owner)
    }

    /// Six random decimal digits, uniform (rejection sampling over 32-bit words).
    static func makeCode() -> String {
        while true {
            let bytes = Sodium.randomBytes(4)
            let word = bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            // 4,294,000,000 is the largest multiple of 10^6 below 2^32: no modulo bias.
            if word < 4_294_000_000 { return String(format: "%06u", word % 1_000_000) }
        }
    }
}
