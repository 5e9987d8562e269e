/// The one shape of every error meshnode throws: a machine-readable ``Code`` to branch on and a
/// reason a person can act on (which input, which setting, what to change).
///
/// Each layer has one error type, a specialization of this struct named after the layer
/// (`STUNError`, `ICEError`, `SDPError`, …), and declares its codes as static members of
/// ``Code`` constrained to its layer, so that a layer can add codes without touching the others:
///
/// ```swift
/// public enum SDPLayer: ErrorLayer { public static let name = "SDPError" }
/// public typealias SDPError = LayerError<SDPLayer>
/// extension LayerError.Code where Layer == SDPLayer {
///     /// A line does not follow RFC 8866's grammar.
///     public static let syntax = Self("syntax")
/// }
/// throw SDPError(.syntax, "line 3: 'm=' needs four fields")
/// ```
public struct LayerError<Layer: ErrorLayer>: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Codes are compared by name; each layer declares its own.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's name, as logs and JSON output show it.
        public let name: String

        /// A code named `name`; layers declare theirs as static members.
        public init(_ name: String) { self.name = name }

        public var description: String { name }
    }

    /// What kind of failure this is.
    public var code: Code
    /// Why it failed, in words that point at the offending input or setting.
    public var reason: String

    /// Creates an error with a code and a reason.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// `Name(code): reason`, for logs.
    public var description: String { "\(Layer.name)(\(code)): \(reason)" }
}

/// A layer that has errors: names the error type in ``LayerError/description``.
public protocol ErrorLayer: Sendable {
    /// The name of the layer's error type, as it appears in logs (`"STUNError"`).
    static var name: String { get }
}

/// An error that carries a reason for people: every ``LayerError``.
public protocol ReasonedError: Error {
    /// Why it failed, in words that point at the offending input or setting.
    var reason: String { get }
}

extension LayerError: ReasonedError {}

extension Error {
    /// The reason of a meshnode error, or the description of any other error: for code that
    /// composes several layers and reports whichever failed.
    public var errorReason: String { (self as? any ReasonedError)?.reason ?? "\(self)" }
}
