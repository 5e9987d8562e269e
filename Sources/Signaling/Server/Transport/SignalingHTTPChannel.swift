import HTTPTypes
public import HummingbirdCore
public import Logging
public import NIOCore
import NIOHTTP1
public import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// The node's HTTP/1.1 connections with `/ws` served on plain SwiftNIO (issue 17): NIOWebSocket's
/// server upgrader in the HTTP pipeline takes `GET /ws` with the `meshnode.v1` subprotocol and
/// leaves the connection to a ``SignalingConnectionHandler`` (no task while it is idle, no
/// async streams); every other request goes on to Hummingbird's responder, as
/// `HTTP1WebSocketUpgradeChannel` would pass it. TLS and the shared port wrap this channel as
/// they wrap any other (`ReloadableTLSChannel`, `SharedPortChannel`).
public struct SignalingHTTPChannel: ServerChildChannel, HTTPChannelHandler {
    /// What the first request made of the connection.
    public enum Negotiated: Sendable {
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// A WebSocket upgrade this node does not take (another path, no `meshnode.v1`): 400.
        case refusedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        /// A WebSocket connection: its handlers serve it; nothing is left to do here.
        case webSocket
    }

    public struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        public let channel: any Channel
    }

    public let responder: HTTPChannelHandler.Responder
    let endpoint: SignalingEndpoint
    let http1: HTTP1Channel.Configuration

    /// Receive buffers start small and grow on demand: an idle connection holds one buffer of
    /// the size its last reads needed (NIO keeps it for the next read), and a signaling client
    /// mostly sends frames of a few hundred bytes. They double after a read that fills them, up
    /// to 64 KiB, and shrink again after smaller reads.
    static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 64 * 1024)

    /// - Parameters:
    ///   - responder: Hummingbird's responder for everything but `/ws`.
    ///   - endpoint: who may open `/ws`, and the hub behind it.
    public init(responder: @escaping HTTPChannelHandler.Responder, endpoint: SignalingEndpoint,
                http1: HTTP1Channel.Configuration = .init()) {
        self.responder = Self.refusingLateUpgrades(responder)
        self.endpoint = endpoint
        self.http1 = http1
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try Self.configure(channel, endpoint: endpoint, http1: http1, logger: logger)
        }.map { Value(negotiated: $0, channel: channel) }
    }

    public func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .http(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refusedUpgrade(let http):
                await Self.writeBadRequest(http, logger: logger)
            case .webSocket:
                break
            }
        } catch {
            logger.trace("connection closed before its first request", metadata: ["error": "\(error)"])
        }
    }

    /// 400 and close: the answer to a WebSocket upgrade this node does not take (RFC 6455 §4.2.2).
    static func writeBadRequest(_ http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, logger: Logger) async {
        do {
            try await http.executeThenClose { _, outbound in
                let head = HTTPResponse(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"])
                try await outbound.write(contentsOf: [.head(head), .end(nil)])
            }
        } catch {
            logger.trace("cannot answer a refused upgrade", metadata: ["error": "\(error)"])
        }
    }

    /// NIO's upgrader looks at a connection's first request only: a later request on the same
    /// connection asking for a WebSocket is sent back to the same URL with `Connection: close`
    /// (307), so that the client retries on a fresh connection, where the upgrader sees it.
    static func refusingLateUpgrades(_ responder: @escaping HTTPChannelHandler.Responder) -> HTTPChannelHandler.Responder {
        struct LateUpgrade: Error {}
        return { (request: Request, writer: consuming ResponseWriter, channel: any Channel) in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else {
                return try await responder(request, writer, channel)
            }
            let location = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
            try await writer.writeResponse(HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: location]))
            throw LateUpgrade()
        }
    }
}

extension SignalingHTTPChannel {
    /// The values of a repeated header as one comma-separated field; nil when absent.
    static func joined(_ values: [String]) -> String? {
        values.isEmpty ? nil : values.joined(separator: ", ")
    }

    /// HTTP/1.1 with NIOWebSocket's upgrader for `/ws`; what was negotiated, when the first
    /// request is in.
    fileprivate static func configure(_ channel: any Channel, endpoint: SignalingEndpoint, http1: HTTP1Channel.Configuration,
                                      logger: Logger) throws -> EventLoopFuture<Negotiated> {
        try channel.syncOptions?.setOption(ChannelOptions.recvAllocator, value: SignalingHTTPChannel.receiveAllocator)
        // The verdict on the upgrade request, from `shouldUpgrade` to `upgradePipelineHandler`;
        // `attempted`: the first request asked for a WebSocket at all.
        let admission = NIOLoopBoundBox<SignalingEndpoint.Admission?>(nil, eventLoop: channel.eventLoop)
        let attempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
        let upgrader = SignalingUpgrader(handshake: NIOTypedWebSocketServerUpgrader<SignalingHTTPChannel.Negotiated>(
            shouldUpgrade: { channel, head in
                attempted.value = true
                let verdict = endpoint.admit(path: head.uri, protocols: head.headers[canonicalForm: "Sec-WebSocket-Protocol"].map(String.init),
                                             // Every Origin line, joined as one field (RFC 9110 §5.3): a client
                                             // library may add its own before ours, and each must pass.
                                             origin: Self.joined(head.headers["Origin"]), host: head.headers.first(name: "Host"),
                                             channel: channel, logger: logger)
                if case .notSignaling = verdict { return channel.eventLoop.makeSucceededFuture(nil) }
                admission.value = verdict
                return channel.eventLoop.makeSucceededFuture(HTTPHeaders([("Sec-WebSocket-Protocol", SignalingProtocol.subprotocol)]))
            },
            // Never called: SignalingUpgrader sets the pipeline up.
            upgradePipelineHandler: { channel, _ in channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported) }
        ), pipeline: { channel in
            channel.eventLoop.makeCompletedFuture {
                let role: SignalingConnectionHandler.Role = switch admission.value {
                case .accepted(let hostHint, let remoteIP)?:
                    .serve(hub: endpoint.hub, drain: endpoint.drain, outboxes: endpoint.outboxes, hostHint: hostHint, remoteIP: remoteIP)
                case .refused(let code, let reason)?:
                    .refuse(code: code, reason: reason)
                case .notSignaling?, nil:
                    .refuse(code: 1011, reason: "")  // RFC 6455 §7.4.1: an unexpected condition
                }
                admission.value = nil
                try channel.pipeline.syncOperations.addHandler(SignalingConnectionHandler(role: role))
                return .webSocket
            }
        })
        let notUpgraded = NIOTypedHTTPServerUpgradeConfiguration<SignalingHTTPChannel.Negotiated>(
            upgraders: [upgrader],
            notUpgradingCompletionHandler: { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    try operations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                    try operations.addHandlers(http1.additionalChannelHandlers())
                    try operations.addHandler(HTTPConnectionStateHandler(idleTimeout: http1.idleTimeout.map { .init($0) }, logger: logger))
                    let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                        wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                    return attempted.value ? .refusedUpgrade(http) : .http(http)
                }
            }
        )
        var configuration = NIOUpgradableHTTPServerPipelineConfiguration(upgradeConfiguration: notUpgraded)
        // As Hummingbird's own HTTP/1 channel: its async channel pipelines requests and
        // handles errors, and HTTPTypes validates response headers.
        configuration.enablePipelining = false
        configuration.enableErrorHandling = false
        configuration.enableResponseHeaderValidation = false
        configuration.decoderConfiguration.maxHeaderFieldSize = http1.httpDecoder.maxHeaderFieldSize
        configuration.decoderConfiguration.maxHeaderListSize = http1.httpDecoder.maxHeaderListSize
        configuration.decoderConfiguration.maxHeaderFieldCount = http1.httpDecoder.maxHeaderFieldCount
        return try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
    }
}

/// The WebSocket upgrade of `/ws`: NIO's upgrader checks the handshake and answers it (RFC 6455
/// §4.2: the version, the key, `Sec-WebSocket-Accept`); the pipeline after it is ours alone.
/// NIO's would add its frame encoder, decoder and protocol error handler (and we added its
/// fragment aggregator); the connection's handler reads and writes frames itself
/// (``WebSocketFrameReader``): four handlers fewer on every connection, and a frame is one hop
/// of the pipeline each way (issue 17).
struct SignalingUpgrader: NIOTypedHTTPServerProtocolUpgrader {
    let handshake: NIOTypedWebSocketServerUpgrader<SignalingHTTPChannel.Negotiated>
    /// Sets the connection's pipeline up once the 101 is out; what the client sent meanwhile is
    /// held back by NIO's upgrade handler until this completes.
    let pipeline: @Sendable (any Channel) -> EventLoopFuture<SignalingHTTPChannel.Negotiated>

    var supportedProtocol: String { handshake.supportedProtocol }
    var requiredUpgradeHeaders: [String] { handshake.requiredUpgradeHeaders }

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead,
                              initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        handshake.buildUpgradeResponse(channel: channel, upgradeRequest: upgradeRequest, initialResponseHeaders: initialResponseHeaders)
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<SignalingHTTPChannel.Negotiated> {
        pipeline(channel)
    }
}
