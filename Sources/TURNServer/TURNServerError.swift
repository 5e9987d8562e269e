public import MeshCore

/// The TURN server layer's errors.
public enum TURNServerLayer: ErrorLayer { public static let name = "TURNServerError" }

/// Why the TURN server could not start or stopped.
public typealias TURNServerError = LayerError<TURNServerLayer>

extension LayerError.Code where Layer == TURNServerLayer {
    /// A setting the server cannot use.
    public static let configuration = Self("configuration")
    /// A listener could not bind its address and port.
    public static let bind = Self("bind")
    /// The TLS certificate or key could not be loaded or made.
    public static let tls = Self("tls")
}
