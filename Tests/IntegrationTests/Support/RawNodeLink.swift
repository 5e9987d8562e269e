import Foundation
import Signaling
import TestSupport

extension RawSignalingSocket {
    /// Answers the node's challenge with `link` as the node at `node` holding `identity`,
    /// towards the node at `hubNode`; returns its answer: `linked` or an `error`.
    func link(as node: String, _ identity: Identity, to hubNode: String) async throws -> SignalingMessage {
        let challenge = try await next()
        guard case .challenge(let body) = challenge.payload else { throw TestFailure("expected challenge, got \(challenge)") }
        send(SignalingMessage(id: "link", from: "", to: "@node", payload: .link(LinkBody(
            node: node, key: identity.publicKeyBase64, sig: identity.sign(text: LinkBody.signedText(nonce: body.nonce, node: node, to: hubNode)),
            nonce: Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()))))
        while true {
            let answer = try await next()
            switch answer.payload {
            case .linked, .error: return answer
            default: continue
            }
        }
    }

    /// The next frame that `match` accepts, skipping others.
    func next<T>(timeout: Duration = TestDeadline.event, _ match: (SignalingMessage) -> T?) async throws -> T {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let message = try? await next(timeout: deadline - ContinuousClock.now), let value = match(message) { return value }
        }
        throw TestFailure("no matching frame within \(timeout)")
    }
}

extension MeshNodeServer {
    /// `host:port` of the node's HTTP endpoint on 127.0.0.1: its node address.
    var nodeAddress: String { "127.0.0.1:\(httpPort)" }
}

/// A node key in a file of its own, for a node started with `--node-key` and a raw link that
/// speaks for that node.
struct NodeKeyFile {
    let directory = TemporaryDirectory("node-key")
    let identity: Identity
    var path: String { directory.path + "/node-identity" }

    init() throws {
        identity = try IdentityFile.create(at: directory.path + "/node-identity")
    }
}
