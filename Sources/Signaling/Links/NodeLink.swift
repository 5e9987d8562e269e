import Foundation
import Hummingbird
import HummingbirdWSClient
import Logging
import NIOSSL

/// The dialling side of a node-to-node link (docs/protocol.md "Node links"): connects to another
/// node's `/ws`, proves this node's key, checks that the node there answers as the address
/// dialled and holds the key pinned for it (trust on first use, kept in the store), then hands
/// the connection to the hub as a link. Reconnects every
/// `reconnectDelay` plus up to a second of jitter, and pings every half heartbeat.
public actor NodeLink {
    public nonisolated let url: String
    /// The address this link dials, `host:port` as the other node names itself.
    public nonisolated let dialled: String
    let hub: SignalingHub
    let identity: Identity
    let nodeAddress: String
    let reconnectDelay: Duration
    let logger: Logger
    /// How a `wss://` link checks the other node's certificate.
    let tls: LinkTLS
    /// The certificate fingerprint pinned by the URL's `#sha256=` fragment.
    let pin: [UInt8]?
    var lastHeard: ContinuousClock.Instant = .now

    public init(url: String, hub: SignalingHub, identity: Identity, nodeAddress: String,
                reconnectDelay: Duration = .seconds(5), tls: LinkTLS = LinkTLS(), logger: Logger) {
        // The settings refuse a malformed pin before a link is made (NodeConfiguration).
        let (bare, pin) = (try? LinkTLS.split(url)) ?? (url, nil)
        self.pin = pin
        self.tls = tls
        self.url = SignalingClient.webSocketURL(bare)
        self.dialled = Self.address(ofURL: self.url)
        self.hub = hub
        self.identity = identity
        self.nodeAddress = nodeAddress
        self.reconnectDelay = reconnectDelay
        self.logger = logger
    }

    /// Keeps the link up until the task is cancelled.
    public func run() async {
        while !Task.isCancelled {
            let reason = await connectOnce()
            logger.info("node link ended", metadata: ["url": "\(url)", "reason": "\(reason)"])
            try? await Task.sleep(for: reconnectDelay + .milliseconds(Int.random(in: 0...1000)))
        }
    }

    /// One connection: handshake, then frames in both directions until either side ends.
    private func connectOnce() async -> String {
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20, closeTimeout: .seconds(2))
        configuration.additionalHeaders[.secWebSocketProtocol] = SignalingProtocol.subprotocol
        var tlsConfiguration: TLSConfiguration?
        if url.lowercased().hasPrefix("wss://") {
            do {
                let port = Int(dialled[dialled.index(after: dialled.lastIndex(of: ":")!)...]) ?? 443
                let (chosen, serverName) = try await tls.configuration(host: Self.host(of: dialled), port: port, pin: pin)
                tlsConfiguration = chosen
                configuration.sniHostname = serverName
            } catch {
                logger.error("node link refused: TLS", metadata: ["url": "\(url)", "error": "\(error)"])
                return "tls: \(error)"
            }
        }
        let client = WebSocketClient(url: url, configuration: configuration, tlsConfiguration: tlsConfiguration,
                                     logger: logger) { inbound, outbound, _ in
            let (frames, sink) = AsyncStream.makeStream(of: ConnectionHandle.Outbound.self, bufferingPolicy: .bufferingOldest(16_384))
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await item in frames {
                        guard case .frame(let text) = item else { break }
                        do { try await outbound.write(.text(text)) } catch { break }
                    }
                }
                group.addTask { await self.read(inbound, sink: sink) }
                await group.next()
                group.cancelAll()
            }
        }
        do {
            try await client.run()
            return "closed"
        } catch {
            return "\(error)"
        }
    }

    /// Reads the handshake, then feeds the hub until the connection ends.
    private func read(_ inbound: WebSocketInboundStream, sink: AsyncStream<ConnectionHandle.Outbound>.Continuation) async {
        let myNonce = Data(Sodium.randomBytes(32)).base64EncodedString()
        var handle: ConnectionHandle?
        var keepAlive: Task<Void, Never>?
        defer {
            keepAlive?.cancel()
            sink.finish()
        }
        do {
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .text(let text) = message else { continue }
                lastHeard = .now
                if let handle {
                    await hub.receive(text, on: handle.id)
                    continue
                }
                let frame = try SignalingCodec.decode(text)
                switch frame.payload {
                case .challenge(let body):
                    let link = LinkBody(node: nodeAddress, key: identity.publicKeyBase64,
                                        sig: identity.sign(text: LinkBody.signedText(nonce: body.nonce, node: nodeAddress, to: dialled)), nonce: myNonce)
                    sink.yield(.frame(SignalingCodec.encode(SignalingMessage(id: UUID().uuidString, from: "", to: SignalingProtocol.nodeAddress, payload: .link(link)))))
                case .linked(let body):
                    // The node that answered must be the one at the URL: it names the address
                    // dialled, signs this link to this node, and holds the key pinned for that
                    // address (on first use).
                    guard body.node == dialled else {
                        logger.error("node link refused: the node at the URL answered as another node", metadata: [
                            "url": "\(url)", "dialled": "\(dialled)", "answered-as": "\(body.node.prefix(80))",
                        ])
                        return
                    }
                    guard Identity.verify(signatureBase64: body.sig, text: LinkBody.signedText(nonce: myNonce, node: dialled, to: nodeAddress), publicKeyBase64: body.key) else {
                        logger.error("node link refused: the other node's signature does not verify", metadata: ["url": "\(url)"])
                        return
                    }
                    guard await hub.isAllowedNodeKey(body.key) else {
                        logger.error("node link refused: the other node's key is not one of this node's mesh keys", metadata: ["url": "\(url)", "key": "\(body.key)"])
                        return
                    }
                    do {
                        try await hub.checkNodeKey(node: dialled, key: body.key)
                    } catch {
                        logger.error("node link refused: key changed", metadata: ["url": "\(url)", "code": "\(error.code)", "reason": "\(error.reason)"])
                        return
                    }
                    let opened = await hub.openLink(node: dialled, key: body.key, remoteIP: Self.host(of: dialled), proven: body.proven ?? false, sink: sink)
                    handle = opened
                    let interval = Duration.milliseconds(Int(max(body.heartbeat, 0.1) * 500))
                    keepAlive = Task { await self.ping(opened, every: interval) }
                case .error(let body):
                    logger.error("node link refused", metadata: ["url": "\(url)", "code": "\(body.code)", "reason": "\(body.reason)"])
                    return
                default:
                    continue
                }
            }
        } catch {
            logger.warning("node link failed", metadata: ["url": "\(url)", "error": "\(error)"])
        }
        if let handle { await hub.closed(handle.id) }
    }

    /// `host:port` of a WebSocket URL, IPv6 hosts in brackets; the port defaults to the scheme's.
    public static func address(ofURL text: String) -> String {
        guard let url = URL(string: text), var host = url.host else { return text }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.contains(":") { host = "[\(host)]" }
        let port = url.port ?? (url.scheme == "wss" || url.scheme == "https" ? 443 : 80)
        return "\(host):\(port)"
    }

    /// The host of `host:port` without brackets.
    static func host(of address: String) -> String {
        var host = String(address[..<(address.lastIndex(of: ":") ?? address.endIndex)])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host
    }

    /// Pings over the link; ends it when the other node has been silent for four pings.
    private func ping(_ handle: ConnectionHandle, every interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if ContinuousClock.now - lastHeard > interval * 4 {
                handle.close()
                return
            }
            handle.send(SignalingMessage(id: UUID().uuidString, from: "", to: SignalingProtocol.nodeAddress, payload: .ping))
        }
    }
}
