// Helpers that several test targets share (a regular target: test targets cannot depend on
// each other).
import Foundation
public import MeshCore
public import NIOCore
public import Testing

/// Expects `body` to throw the layer error `code` (for example `SDPError.Code.sdpSyntax`) with
/// a reason.
public func expectError<Layer: ErrorLayer>(_ code: LayerError<Layer>.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected \(Layer.name)(\(code)), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as LayerError<Layer> {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
        #expect(!error.reason.isEmpty, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(Layer.name)(\(code)), got \(error)", sourceLocation: sourceLocation)
    }
}

/// A small deterministic generator so that loss patterns are the same on every run.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
