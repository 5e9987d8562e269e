import NIOCore
import NIOSSL

/// First handler on the TLS port: a connection whose first byte opens a TLS handshake record
/// (0x16, RFC 8446 §5.1) gets TLS; anything else is served as plain TURN over TCP.
///
/// coturn does the same, and clients need it: libnice's "TURN over TLS" relay type sends plain
/// TCP unless it runs in Google or MSOC compatibility (its TLS is a pseudo-TLS for those).
final class TLSDetectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    /// The content type of a TLS handshake record, the first byte a TLS client sends (RFC 8446 §5.1).
    static let handshakeRecord: UInt8 = 0x16

    private let tls: NIOSSLContext
    private let loop: NIOLoopBound<TURNLoop>
    private let opened: NIODeadline
    private var silenceTimer: Scheduled<Void>?

    init(tls: NIOSSLContext, loop: NIOLoopBound<TURNLoop>, opened: NIODeadline = .now()) {
        self.tls = tls
        self.loop = loop
        self.opened = opened
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) else { return }
        silenceTimer?.cancel()
        let pipeline = context.pipeline.syncOperations
        do {
            let isTLS = first == Self.handshakeRecord
            let stream = TURNStreamHandler(loop: loop, transport: isTLS ? .tls : .tcp, opened: opened)
            try pipeline.addHandler(stream, position: .after(self))
            if isTLS { try pipeline.addHandler(NIOSSLServerHandler(context: tls), position: .after(self)) }
            // The new handlers missed channelActive: replay it, then the bytes.
            context.fireChannelActive()
            context.fireChannelRead(data)
            pipeline.removeHandler(context: context, promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        // Held back until the first bytes show which handlers follow; a connection that sends
        // nothing is closed when the idle timeout that the stream handler would apply runs out.
        let channel = context.channel
        let metrics = loop.value.shared.metrics
        silenceTimer = context.eventLoop.scheduleTask(deadline: opened + loop.value.config.streamIdleTimeout) {
            metrics.idleConnectionsClosed.increment()
            channel.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        silenceTimer?.cancel()
        context.fireChannelInactive()
    }
}
