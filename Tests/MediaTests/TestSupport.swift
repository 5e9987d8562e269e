import Foundation
import NIOCore
import Testing
@testable import Media

/// Builds a ByteBuffer from a hex string; spaces are ignored.
func hex(_ text: String) -> ByteBuffer {
    let digits = text.filter { !$0.isWhitespace }
    var bytes: [UInt8] = []
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        bytes.append(UInt8(digits[index..<next], radix: 16)!)
        index = next
    }
    return ByteBuffer(bytes: bytes)
}

extension ByteBuffer {
    var hexString: String {
        (getBytes(at: readerIndex, length: readableBytes) ?? []).map { String(format: "%02x", $0) }.joined()
    }
}

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

enum Fixtures {
    static func text(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").appendingPathComponent(name)
        return try String(contentsOf: url, encoding: .utf8)
    }
}
