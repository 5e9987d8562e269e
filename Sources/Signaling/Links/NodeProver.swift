import Foundation
import HummingbirdWSClient
import Logging
import NIOSSL
import STUN
import Synchronization

/// Dial-back for node addresses (docs/protocol.md "Node links", "Proving an address"): this
/// node connects to `ws://ADDRESS/ws` (or `wss://`) itself and has the node there sign a fresh nonce
/// (`prove`/`proof`). An address is bound to a key only when the node *at* that address holds
/// the key, never because someone claims it.
///
/// What another party can make this node dial with it: one WebSocket upgrade to `/ws`, plain
/// and over TLS at once, at a numeric, unicast `host:port` it names, bounded by `timeout`; the hub limits how many run at
/// once and how often one address is tried. Every failure (nothing listening, not a meshnode,
/// a wrong key, a bad signature) looks the same to the party that caused the dial, so it does
/// not learn which ports are open.
public struct NodeProver: Sendable {
    /// What the node at an address proved.
    public enum Outcome: Sendable, Equatable {
        /// It signed the nonce with this key (base64).
        case proven(key: String)
        /// No proof: why, for the log.
        case failed(String)
    }

    /// Proves one address.
    public let prove: @Sendable (_ address: String) async -> Outcome

    public init(prove: @escaping @Sendable (_ address: String) async -> Outcome) {
        self.prove = prove
    }

    /// The real dial-back over a WebSocket, bounded by `timeout` from connect to proof.
    public static func webSocket(timeout: Duration = .seconds(3), logger: Logger) -> NodeProver {
        NodeProver { address in await dial(address, timeout: timeout, logger: logger) }
    }

    /// Why `address` may not be dialled, or nil when it may: a numeric host (no name is
    /// resolved on someone else's behalf) that is not the unspecified address, multicast or
    /// broadcast, and a port.
    public static func refusal(toDial address: String) -> String? {
        guard Address.isValidNode(address), let colon = address.lastIndex(of: ":") else { return "not a host:port address" }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) } else if host.contains(":") {
            return "an IPv6 host must be in brackets"
        }
        guard let ip = IPAddress(string: host) else { return "the host is not a numeric IP address" }
        switch ip {
        case .v4(let a):
            // 0.0.0.0/8 ("this network", RFC 1122 §3.2.1.3), multicast 224/4, broadcast.
            if a >> 24 == 0 || a == 0xffff_ffff || a >> 28 == 0xe { return "not a unicast address" }
        case .v6(let hi, let lo):
            if (hi == 0 && lo == 0) || hi >> 56 == 0xff { return "not a unicast address" }
        }
        return nil
    }

    /// Dials `ws://` and `wss://` at once and takes the answer of whichever a node answered on:
    /// a node with `--https` speaks only TLS on its web port (a plain request to it does not
    /// fail fast, it waits for a TLS handshake), others only plain WebSocket. The TLS
    /// certificate is not checked: an address has no name for a CA to vouch for, and the check
    /// is the signature over our fresh nonce by the key the node there holds, which TLS adds
    /// nothing to.
    private static func dial(_ address: String, timeout: Duration, logger: Logger) async -> Outcome {
        if let refusal = refusal(toDial: address) { return .failed("not dialled: \(refusal)") }
        return await withTaskGroup(of: (secure: Bool, outcome: Outcome).self) { group in
            for secure in [false, true] {
                group.addTask { (secure, await dial(address, secure: secure, timeout: timeout, logger: logger)) }
            }
            var plain: Outcome?
            for await (secure, outcome) in group {
                if case .failed(let reason) = outcome, reason.hasPrefix(unreachable) {
                    if !secure { plain = outcome }
                    continue
                }
                // A node answered (with a proof, or with a refusal or a bad proof): that is the answer.
                group.cancelAll()
                return outcome
            }
            return plain ?? .failed(unreachable + address)
        }
    }

    /// How a failure starts when the address did not answer as a node at all (as opposed to a
    /// node that answered with a wrong or bad proof).
    private static let unreachable = "no node answered at "

    private static func dial(_ address: String, secure: Bool, timeout: Duration, logger: Logger) async -> Outcome {
        let nonce = Data(Sodium.randomBytes(32)).base64EncodedString()
        let result = OutcomeBox()
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 16, closeTimeout: .seconds(1))
        configuration.additionalHeaders[.secWebSocketProtocol] = SignalingProtocol.subprotocol
        var tls: TLSConfiguration?
        if secure {
            var client = TLSConfiguration.makeClientConfiguration()
            client.certificateVerification = .none
            tls = client
            // SNI takes no address (RFC 6066 §3); the name is not checked, a reserved one stands in (RFC 6761 §6.4).
            configuration.sniHostname = "meshnode.invalid"
        }
        let url = (secure ? "wss://" : "ws://") + address + SignalingProtocol.path
        let client = WebSocketClient(url: url, configuration: configuration, tlsConfiguration: tls, logger: logger) { inbound, outbound, _ in
            var frames = 0
            for try await message in inbound.messages(maxSize: 1 << 16) {
                frames += 1
                // A challenge, then the proof: anything longer is not a node answering.
                guard frames <= 4, case .text(let text) = message, let decoded = try? SignalingCodec.decode(text) else { break }
                switch decoded.payload {
                case .challenge:
                    let ask = SignalingMessage(id: UUID().uuidString, from: "", to: SignalingProtocol.nodeAddress,
                                               payload: .prove(ProveBody(nonce: nonce, node: address)))
                    try await outbound.write(.text(SignalingCodec.encode(ask)))
                case .proof(let body):
                    let outcome: Outcome
                    if body.node != address {
                        outcome = .failed("the node at \(address) calls itself \(body.node.prefix(60))")
                    } else if Identity.decodeKey(body.key) == nil
                        || !Identity.verify(signatureBase64: body.sig, text: ProofBody.signedText(nonce: nonce, node: address), publicKeyBase64: body.key) {
                        outcome = .failed("the proof from \(address) does not verify")
                    } else {
                        outcome = .proven(key: body.key)
                    }
                    result.set(outcome)
                    return
                case .error(let body):
                    result.set(.failed("\(address) refused: \(body.code) \(body.reason.prefix(80))"))
                    return
                default:
                    continue
                }
            }
        }
        // The connection runs on its own; the caller waits at most `timeout` for it, so that a
        // host that never answers a SYN does not hold a link or a record for long.
        let waiter = OnceWaiter()
        let connection = Task {
            do { try await client.run() } catch {
                result.setIfEmpty(.failed(unreachable + "\(url): \(error)"))
            }
            waiter.finish()
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            waiter.finish()
        }
        // Cancelled when the other scheme's dial got the answer: stop waiting at once.
        await withTaskCancellationHandler { await waiter.wait() } onCancel: { waiter.finish() }
        timer.cancel()
        connection.cancel()
        return result.current ?? .failed(unreachable + "\(url) within \(timeout)")
    }
}

/// One waiter, woken by the first `finish()`, whether that comes before or after `wait()`.
private final class OnceWaiter: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Void, Never>)
        case finished
    }

    private let state = Mutex(State.idle)

    func wait() async {
        await withCheckedContinuation { continuation in
            let finishedAlready = state.withLock { s in
                if case .finished = s { return true }
                s = .waiting(continuation)
                return false
            }
            if finishedAlready { continuation.resume() }
        }
    }

    func finish() {
        let waiting = state.withLock { s -> CheckedContinuation<Void, Never>? in
            defer { s = .finished }
            if case .waiting(let continuation) = s { return continuation }
            return nil
        }
        waiting?.resume()
    }
}

/// The outcome of one dial-back, set by the connection's handler, read by the caller.
private final class OutcomeBox: Sendable {
    private let value = Mutex<NodeProver.Outcome?>(nil)

    func set(_ outcome: NodeProver.Outcome) {
        value.withLock { $0 = outcome }
    }

    /// Sets the outcome unless one is set already (the handler's answer wins over the error
    /// of the connection it then closed).
    func setIfEmpty(_ outcome: NodeProver.Outcome) {
        value.withLock { if $0 == nil { $0 = outcome } }
    }

    var current: NodeProver.Outcome? { value.withLock { $0 } }
}
