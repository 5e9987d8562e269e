public import MeshCore

/// The codecs layer's errors.
public enum CodecLayer: ErrorLayer { public static let name = "CodecError" }

/// An error of the codecs, sources and media files: a C library refused a configuration or a
/// frame, a file is malformed, a system facility is missing.
public typealias CodecError = LayerError<CodecLayer>

extension LayerError.Code where Layer == CodecLayer {
    /// The input ended before a length or field it announced.
    public static let truncated = Self("truncated")
    /// A field has a value the format forbids.
    public static let malformed = Self("malformed")
    /// A caller passed a value outside the allowed range (frame size, bitrate…).
    public static let invalidArgument = Self("invalidArgument")
    /// libopus or libvpx returned an error.
    public static let codecFailure = Self("codecFailure")
    /// A media file could not be opened, read or written.
    public static let io = Self("io")
    /// A system facility the operation needs is missing (an X display, the MIT-SHM extension…).
    public static let unavailable = Self("unavailable")
}
