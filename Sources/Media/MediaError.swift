public import MeshCore

/// The media engine layer's errors.
public enum MediaLayer: ErrorLayer { public static let name = "MediaError" }

/// An error of the media engine: a configuration it cannot run, a stream it cannot build.
public typealias MediaError = LayerError<MediaLayer>

extension LayerError.Code where Layer == MediaLayer {
    /// A caller passed a value outside the allowed range.
    public static let invalidArgument = Self("invalidArgument")
    /// The negotiated media has nothing the engine can send or receive.
    public static let negotiationFailed = Self("negotiationFailed")
    /// A source or sink could not be opened.
    public static let io = Self("io")
}
