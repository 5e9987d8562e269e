public import MeshCore

/// The RTP layer's errors.
public enum RTPLayer: ErrorLayer { public static let name = "RTPError" }

/// Why an RTP/RTCP packet or payload was rejected, or could not be built.
public typealias RTPError = LayerError<RTPLayer>

extension LayerError.Code where Layer == RTPLayer {
    /// The input ended before a length or field it announced.
    public static let truncated = Self("truncated")
    /// A field has a value the specification forbids.
    public static let malformed = Self("malformed")
    /// The packet's version field is not 2 (RFC 3550 §5.1).
    public static let unsupportedVersion = Self("unsupportedVersion")
    /// A caller passed a value outside the allowed range (extension id, payload size…).
    public static let invalidArgument = Self("invalidArgument")
}
