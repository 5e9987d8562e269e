import CoreMetrics
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import TURNServer

/// The web port with `single-port`: HTTPS, WSS and TURN over TLS on one TCP port, for networks
/// that let nothing out but TCP 443 (docs/deploy.md "One port for strict networks").
///
/// Each accepted connection gets a ``SharedPortDemultiplexer``, which puts TLS in front when the
/// client starts a TLS handshake (with the web certificate current when it was accepted, as on
/// the HTTPS port alone) and waits for the first bytes inside it: a STUN message hands the
/// connection to the TURN server's own stream handling
/// (``TURNServer/adoptStream(_:transport:opened:)``), an HTTP request line to `base`, the
/// node's HTTP/1.1 and WebSocket pipeline. Without TLS only TURN is taken. Until then the connection holds a place in the
/// TURN server's connection caps (total, per source, the node's connection budget); as HTTP
/// it gives it back and the web server's own rules apply (the WebSocket caps at the upgrade).
struct SharedPortChannel<Base: ServerChildChannel>: ServerChildChannel {
    /// What the connection turns out to be: `base`'s value for HTTP, nil for TURN (served by the
    /// TURN server's handlers from then on). Fails when the connection closes undecided.
    struct Value: ServerChildChannelValue {
        let channel: any Channel
        let decided: EventLoopFuture<Base.Value?>
    }

    let base: Base
    let certificate: WebCertificate
    let turn: TURNServer
    /// How long after it was accepted a connection has to finish the TLS handshake and send
    /// its first bytes (the TURN server's `turn-idle-timeout`).
    let firstBytesTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        // Over a cap the connection is closed before TLS (as on the TURN TLS port).
        guard let place = turn.admitSharedConnection(channel) else {
            SharedPortMetrics.refused.increment()
            // NIO's async server bootstrap does not close a connection whose setup failed.
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(ChannelError.inputClosed)
        }
        let promise = channel.eventLoop.makePromise(of: Base.Value?.self)
        // The certificate current now, as on the HTTPS port alone (a SIGHUP reload applies to
        // connections accepted afterwards).
        let demultiplexer = SharedPortDemultiplexer(base: base, turn: turn, place: place, tls: certificate.context, decided: promise,
                                                    deadline: .now() + firstBytesTimeout, logger: logger)
        return channel.eventLoop.makeCompletedFuture {
            do {
                try channel.pipeline.syncOperations.addHandler(demultiplexer)
            } catch {
                promise.fail(error)
                throw error
            }
            return Value(channel: channel, decided: promise.futureResult)
        }
    }

    func handle(value: Value, logger: Logger) async {
        guard let http = try? await value.decided.get() else { return }
        await base.handle(value: http, logger: logger)
    }
}

/// Holds a shared-port connection's first bytes until they decide what it is, then puts the
/// TURN or the HTTP handlers after itself, passes on `channelActive` (held back until then) and
/// the bytes, and leaves the pipeline. A connection that sends nothing deciding before the
/// deadline (a slow handshake included), or bytes that are neither, is closed.
///
/// First, raw: a TLS handshake record (first byte 0x16, RFC 8446 §5.1) puts TLS in front of
/// this handler, and ``SharedPortClassifier`` then reads what comes out of it (STUN: TURN over
/// TLS; an HTTP request line: HTTPS and WSS). Any other first byte: only a STUN message is
/// taken, as TURN over TCP, as the TURN server's TLS port does too (libnice's "TLS" relay type
/// speaks plain TCP): the shared port then serves `meshnode join`/`call` behind a firewall that
/// lets only TCP 443 out. HTTP in clear text is refused there: the page is HTTPS only.
final class SharedPortDemultiplexer<Base: ServerChildChannel>: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let base: Base
    private let turn: TURNServer
    private let place: TURNServer.StreamPlace
    private let tls: NIOSSLContext
    private let decided: EventLoopPromise<Base.Value?>
    private let deadline: NIODeadline
    private let logger: Logger
    private let opened = NIODeadline.now()
    private var buffered: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var done = false
    /// Nil until the first byte: whether the connection speaks TLS.
    private var encrypted: Bool?
    /// HTTP was decided and its handlers are being set up: bytes wait in `buffered`.
    private var settingUpHTTP = false

    init(base: Base, turn: TURNServer, place: TURNServer.StreamPlace, tls: NIOSSLContext, decided: EventLoopPromise<Base.Value?>,
         deadline: NIODeadline, logger: Logger) {
        self.base = base
        self.turn = turn
        self.place = place
        self.tls = tls
        self.decided = decided
        self.deadline = deadline
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let logger = logger
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            SharedPortMetrics.closed.increment()
            logger.debug("shared port: nothing decisive before the deadline; closed",
                         metadata: ["client": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        if !done {
            done = true
            decided.fail(ChannelError.inputClosed)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        // Held back: the handlers that follow are not in the pipeline yet.
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !done else { return }
        if encrypted == nil {
            guard let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) else { return }
            encrypted = first == TLSRecord.handshake
            if first == TLSRecord.handshake {
                // TLS in front of this handler; the bytes go through it from the pipeline's head.
                do {
                    try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls), position: .before(self))
                } catch {
                    close(context: context)
                    return
                }
                context.pipeline.syncOperations.fireChannelRead(wrapInboundOut(bytes))
                return
            }
        }
        if buffered == nil { buffered = bytes } else { buffered!.writeBuffer(&bytes) }
        guard !settingUpHTTP else { return }
        let verdict = SharedPortClassifier.classify(buffered!)
        switch verdict == .http && encrypted == false ? .neither : verdict {
        case .needMore:
            return
        case .neither:
            SharedPortMetrics.closed.increment()
            logger.debug("shared port: first bytes are neither STUN nor HTTP; closed",
                         metadata: ["client": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"])
            close(context: context)
        case .turn:
            do {
                try turn.adoptStream(context.channel, transport: encrypted == true ? .tls : .tcp, opened: opened)
            } catch {
                close(context: context)
                return
            }
            (encrypted == true ? SharedPortMetrics.turnTLS : SharedPortMetrics.turnTCP).increment()
            hand(context: context, value: nil)
        case .http:
            SharedPortMetrics.https.increment()
            // Now the web server's caps apply (the WebSocket caps at the upgrade).
            place.release()
            settingUpHTTP = true
            let context = context
            base.setup(channel: context.channel, logger: logger).assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success(let value): hand(context: context, value: value)
                case .failure: close(context: context)
                }
            }
        }
    }

    /// Settles the verdict, replays what the new handlers missed and leaves the pipeline.
    private func hand(context: ChannelHandlerContext, value: Base.Value?) {
        done = true
        timer?.cancel()
        decided.succeed(value)
        context.fireChannelActive()
        if let bytes = buffered {
            buffered = nil
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func close(context: ChannelHandlerContext) {
        done = true
        timer?.cancel()
        decided.fail(ChannelError.inputClosed)
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The web server stops: an undecided connection has nothing to finish. The web server
        // allows half-closed connections: a client that has closed its side before saying
        // anything will not, and its place is given back now, not at the deadline.
        if event is ChannelShouldQuiesceEvent || event as? ChannelEvent == .inputClosed {
            close(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A failed TLS handshake, mostly; nothing to tell a client that never got this far.
        context.close(promise: nil)
    }
}

/// TLS record content types (RFC 8446 §5.1).
enum TLSRecord {
    /// The content type of a handshake record: a TLS client's first byte.
    static let handshake: UInt8 = 0x16
}

/// `meshnode_shared_port_connections_total{kind}`: what the shared port's connections turned out
/// to be — `turn_tls`, `turn_tcp`, `https`, `refused` (a TURN cap, at accept) or `closed`
/// (garbage, or nothing decisive before the deadline).
enum SharedPortMetrics {
    static let turnTLS = counter("turn_tls")
    static let turnTCP = counter("turn_tcp")
    static let https = counter("https")
    static let refused = counter("refused")
    static let closed = counter("closed")

    private static func counter(_ kind: String) -> Counter {
        Counter(label: "meshnode_shared_port_connections_total", dimensions: [("kind", kind)])
    }
}
