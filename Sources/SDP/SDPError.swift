public import MeshCore

/// The SDP layer's errors.
public enum SDPLayer: ErrorLayer { public static let name = "SDPError" }

/// Why a session description could not be parsed, written or negotiated.
public typealias SDPError = LayerError<SDPLayer>

extension LayerError.Code where Layer == SDPLayer {
    /// A session description line does not follow RFC 8866's grammar.
    public static let sdpSyntax = Self("sdpSyntax")
    /// A caller passed a value outside the allowed range.
    public static let invalidArgument = Self("invalidArgument")
    /// An offer has nothing this side can answer with.
    public static let negotiationFailed = Self("negotiationFailed")
}
