import Foundation
import Logging
import Synchronization
import Testing
import TestSupport
@testable import Signaling

/// Which node key answers at which address: the test's stand-in for the network that the hub's
/// dial-back reaches (`NodeProver`). An address not listed has nothing listening.
final class NodeRegistry: Sendable {
    private let nodes = Mutex<[String: String]>([:])
    private let dials = Mutex<[String]>([])

    func run(_ identity: Identity, at address: String) {
        nodes.withLock { $0[address] = identity.publicKeyBase64 }
    }

    func stop(_ address: String) {
        _ = nodes.withLock { $0.removeValue(forKey: address) }
    }

    /// Every address dialled so far, in order.
    var dialled: [String] { dials.withLock { $0 } }

    var prover: NodeProver {
        NodeProver { [self] address in
            dials.withLock { $0.append(address) }
            if let key = nodes.withLock({ $0[address] }) { return .proven(key: key) }
            return .failed("connection refused")
        }
    }
}

/// Log lines, kept for a test to count.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { lines.withLock { $0 } }

    func count(containing text: String) -> Int { all.filter { $0.contains(text) }.count }

    var logger: Logger {
        Logger(label: "capture") { _ in Handler(capture: self) }
    }

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            capture.append("\(event.level) \(event.message) \(fields)")
        }
    }
}

extension TestPeer {
    /// Answers the challenge with `link` as the node at `node` holding `identity`, towards the
    /// hub's node `to`; returns the hub's answer: `linked` or an error.
    func link(as node: String, _ identity: Identity, to hubNode: String) async throws -> SignalingMessage {
        let nonce = try await next { if case .challenge(let body) = $0.payload { body.nonce } else { nil } }
        await send(.link(LinkBody(node: node, key: identity.publicKeyBase64,
                                  sig: identity.sign(text: LinkBody.signedText(nonce: nonce, node: node, to: hubNode)),
                                  nonce: Data(Sodium.randomBytes(32)).base64EncodedString())))
        return try await next { message in
            switch message.payload {
            case .linked, .error: message
            default: nil
            }
        }
    }

    /// `link`, expecting `linked`: its body.
    func linked(as node: String, _ identity: Identity, to hubNode: String) async throws -> LinkedBody {
        let answer = try await link(as: node, identity, to: hubNode)
        guard case .linked(let body) = answer.payload else { throw TestFailure("expected linked, got \(answer)") }
        return body
    }
}
