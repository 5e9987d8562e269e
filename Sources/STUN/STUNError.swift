public import MeshCore

/// The STUN layer's errors.
public enum STUNLayer: ErrorLayer { public static let name = "STUNError" }

/// Why bytes were rejected as a STUN message or ChannelData frame (RFC 8489 §5, RFC 8656 §12).
public typealias STUNError = LayerError<STUNLayer>

extension LayerError.Code where Layer == STUNLayer {
    /// The bytes end before a header, a length or an attribute they announce.
    public static let truncated = Self("truncated")
    /// The first bits or the magic cookie say this is not STUN (RFC 8489 §6).
    public static let notSTUN = Self("notSTUN")
    /// A length is not a multiple of 4 or disagrees with the bytes present.
    public static let badLength = Self("badLength")
    /// An attribute's value does not have the form its type requires.
    public static let badAttribute = Self("badAttribute")
    /// FINGERPRINT does not match the message (RFC 8489 §14.7).
    public static let badFingerprint = Self("badFingerprint")
    /// An address attribute has an unknown family or the wrong length for it.
    public static let badAddress = Self("badAddress")
    /// A ChannelData channel number outside 0x4000–0x4FFF (RFC 8656 §12).
    public static let badChannelNumber = Self("badChannelNumber")
    /// The message is larger than we accept.
    public static let tooLarge = Self("tooLarge")
}
