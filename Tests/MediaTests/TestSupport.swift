import Foundation
import NIOCore
import Testing
import TestSupport
@testable import Media

/// Expects `body` to throw a MediaError with `code`.
func expectMediaError(_ code: MediaError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected MediaError(\(code)), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as MediaError {
        #expect(error.code == code, "got \(error)", sourceLocation: sourceLocation)
        #expect(!error.reason.isEmpty, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected MediaError(\(code)), got \(error)", sourceLocation: sourceLocation)
    }
}

/// A small deterministic generator so that loss patterns are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The SDP and capture files in Tests/MediaTests/Fixtures.
enum Fixtures {
    static func text(_ name: String) throws -> String {
        try TestFiles.text("Tests/MediaTests/Fixtures/" + name)
    }
}
