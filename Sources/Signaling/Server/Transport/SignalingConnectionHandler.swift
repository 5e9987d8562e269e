import Logging
import NIOCore
import NIOWebSocket

/// One signaling WebSocket connection on plain SwiftNIO, after the upgrade (issue 17): the
/// last handler of the connection's pipeline, behind NIOWebSocket's frame decoder and
/// `NIOWebSocketFrameAggregator`. It keeps no task while the connection is idle. A chat to a
/// peer of this node and a recipient's ack take the hub's fast path here on the event loop
/// (SignalingHub+FastChat.swift: no task, no actor); any other text frame goes to the hub in a
/// short task of its own. One frame at a time either way, so the order holds; the hub's frames
/// come back through ``ChannelOutput`` onto the event loop. Frames that arrive while the hub is
/// busy with earlier ones go to it together in the next task.
///
/// The state is a few words: the hub's handle of the connection, the frames waiting (at most
/// ``maxWaiting``; beyond that the socket is not read, which is TCP's back-pressure on the
/// client), and where the close handshake stands.
final class SignalingConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    /// What this connection is for.
    enum Role {
        /// A signaling connection: registered with `hub` once added.
        case serve(hub: SignalingHub, drain: ConnectionDrain, hostHint: String?, remoteIP: String?)
        /// Refused at admission: closed at once with this code and reason.
        case refuse(code: Int, reason: String)
    }

    /// A frame read and not yet handed to the hub.
    private enum Waiting {
        case text(String)
        case binary
    }

    /// Frames read ahead while the hub handles one: the rate limit (50 frames/s, burst 200)
    /// is the hub's; this only bounds what one connection holds in memory.
    static let maxWaiting = 8
    /// Frames written while the socket does not take them: a client that stops reading is
    /// closed at this many (as the stream-based writer did with a full queue of 4096).
    static let maxUnwritable = 4096
    /// The longest header of a frame the server sends (RFC 6455 §5.2: no mask, a 64-bit length).
    static let headerRoom = 10
    /// How long a client has to answer our Close (RFC 6455 §7.1.1); then the TCP connection is cut.
    static let closeGrace: TimeAmount = .seconds(2)

    private let role: Role
    private var context: ChannelHandlerContext?
    /// The hub's handle of this connection, once `hub.open` has returned; dropped when the
    /// channel goes (it leads back to this handler through ``ChannelOutput``).
    private var connection: ConnectionHandle?
    /// A frame is with the hub (or the connection is being opened): the next waits.
    private var busy = true
    private var waiting: [Waiting] = []
    /// A `read` held back because `waiting` is full.
    private var readHeld = false
    private var unwritable = 0
    /// A flush is scheduled for this event-loop tick: frames the hub sends in one burst go out
    /// in one `writev`.
    private var flushPending = false
    /// Our Close frame went out: no more data frames (RFC 6455 §5.5.1); the timer cuts a
    /// client that does not answer.
    private var closeSent = false
    private var closeTimer: Scheduled<Void>?
    private var drainToken: Int?
    private var inactive = false

    init(role: Role) {
        self.role = role
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        switch role {
        case .refuse(let code, let reason):
            sendClose(context: context, code: code, reason: reason)
        case .serve(let hub, let drain, let hostHint, let remoteIP):
            drain.opened()
            let loop = context.eventLoop
            let bound = NIOLoopBound(self, eventLoop: loop)
            drainToken = drain.whenDraining {
                loop.execute { bound.value.drainStarted() }
            }
            let output = ChannelOutput(handler: bound, eventLoop: loop)
            Task {
                let handle = await hub.open(hostHint: hostHint, remoteIP: remoteIP, output: output)
                loop.execute { bound.value.opened(handle) }
            }
        }
    }

    private func opened(_ handle: ConnectionHandle) {
        if inactive {
            if case .serve(let hub, _, _, _) = role { Task { await hub.closed(handle.id) } }
            return
        }
        connection = handle
        busy = false
        pump()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            waiting.append(.text(Self.text(of: frame)))
            pump()
        case .binary:
            waiting.append(.binary)
            pump()
        case .ping:
            // RFC 6455 §5.5.3: a Pong carries the Ping's application data.
            guard !closeSent else { return }
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            if closeSent {
                context.close(promise: nil)
                return
            }
            // RFC 6455 §5.5.1: answer with a Close echoing the status code, then the server
            // closes the TCP connection (§7.1.1).
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self)
            closeSent = true
            var echo = context.channel.allocator.buffer(capacity: 2)
            if let code { echo.writeInteger(code) }
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: echo)))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        default:
            break
        }
    }

    /// A text frame's payload as a string, unmasked (RFC 6455 §5.3) straight into the string's
    /// storage: one copy per frame, where `unmaskedData` and then `readString` made two (an
    /// unmasked buffer, then the string). Invalid UTF-8 is repaired as `readString` does.
    static func text(of frame: WebSocketFrame) -> String {
        let data = frame.data
        guard let key = frame.maskKey else { return String(buffer: data) }
        return data.withUnsafeReadableBytes { bytes in
            String(unsafeUninitializedCapacity: bytes.count) { out in
                for index in 0..<bytes.count { out[index] = bytes[index] ^ key[index & 3] }
                return bytes.count
            }
        }
    }

    /// Hands the waiting frames to the hub when none is with it.
    private func pump() {
        guard !busy, let connection, !waiting.isEmpty, case .serve(let hub, _, _, _) = role, let context else { return }
        let id = connection.id
        busy = true
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        // The fast path takes the first frame if it is a chat or an ack it handles; the next
        // waits until its write is answered (one write in flight per connection, as on the
        // hub's path, so answers keep the frames' order).
        if case .text(let text) = waiting[0],
           hub.receiveFast(text, on: connection, answered: { reply in loop.execute { bound.value.answered(reply) } }) {
            waiting.removeFirst()
            resumeReading(context: context)
            return
        }
        // What waits up to the next chat or ack, in one task: under load one hop to the hub and
        // one back per batch, not per frame; the chat behind a ping still takes the fast path.
        // The frames stay in order: the hub takes them one after the other.
        var count = 1
        while count < waiting.count {
            if case .text(let text) = waiting[count], ChatEnvelope.scan(text) != nil { break }
            count += 1
        }
        let batch = Array(waiting.prefix(count))
        waiting.removeFirst(count)
        // A short task, not one per connection: the hub's async frames (tens of KB deep in
        // login or chat) live in this task's allocator and go when it ends (issue 17).
        Task {
            for frame in batch {
                switch frame {
                case .text(let text): await hub.receive(text, on: id)
                case .binary: await hub.receiveBinary(on: id)
                }
            }
            loop.execute { bound.value.handled() }
        }
        resumeReading(context: context)
    }

    private func resumeReading(context: ChannelHandlerContext) {
        if readHeld, waiting.count < Self.maxWaiting {
            readHeld = false
            context.read()
        }
    }

    private func handled() {
        busy = false
        pump()
    }

    /// The fast path's write was answered: its reply (an `ack` or an `error`) goes out, and
    /// the next frame may go.
    private func answered(_ reply: String?) {
        if let reply { send(text: reply) }
        handled()
    }

    func read(context: ChannelHandlerContext) {
        guard waiting.count < Self.maxWaiting else {
            readHeld = true
            return
        }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        inactive = true
        closeTimer?.cancel()
        waiting.removeAll()
        if case .serve(let hub, let drain, _, _) = role {
            if let drainToken { drain.forget(drainToken) }
            drain.closed()
            if let connection {
                let id = connection.id
                Task { await hub.closed(id) }
            }
            connection = nil
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let event as ChannelEvent where event == .inputClosed:
            // The client closed its side without a Close frame: nothing more will come.
            context.close(promise: nil)
        case is ChannelShouldQuiesceEvent:
            // The web server stops: as on a drain, the client reconnects later.
            sendClose(context: context, code: ConnectionDrain.serviceRestart, reason: ConnectionDrain.reason)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A frame over the limits (NIOWebSocketFrameAggregator) or a failed socket: the
        // connection ends; the protocol error handler before us has sent its Close if any.
        context.close(promise: nil)
    }

    // MARK: Outbound

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { unwritable = 0 }
        context.fireChannelWritabilityChanged()
    }

    /// One frame from the hub.
    fileprivate func send(text: String) {
        guard let context, !inactive, !closeSent else { return }
        // Room in front for the frame's header: NIOWebSocket's encoder writes it there, and the
        // frame goes down the pipeline and into `writev` as one buffer instead of a header
        // buffer and the text (two writes per frame, issue 17).
        var buffer = context.channel.allocator.buffer(capacity: Self.headerRoom + text.utf8.count)
        buffer.moveWriterIndex(forwardBy: Self.headerRoom)
        buffer.moveReaderIndex(forwardBy: Self.headerRoom)
        buffer.writeString(text)
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: buffer)), promise: nil)
        if !context.channel.isWritable {
            unwritable += 1
            if unwritable >= Self.maxUnwritable {
                context.close(promise: nil)
                return
            }
        }
        guard !flushPending else { return }
        flushPending = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushPending = false
            guard !inactive else { return }
            context.flush()
        }
    }

    /// The hub ends the connection (login timeout, silence, a dropped session).
    fileprivate func closeFromHub() {
        guard let context else { return }
        // RFC 6455 §7.4.1: 1000, the purpose of the connection is fulfilled.
        sendClose(context: context, code: 1000, reason: "")
    }

    private func drainStarted() {
        guard let context else { return }
        sendClose(context: context, code: ConnectionDrain.serviceRestart, reason: ConnectionDrain.reason)
    }

    /// Starts the closing handshake (RFC 6455 §7.1.2): our Close, then the client's, then TCP
    /// closes; a client that does not answer within ``closeGrace`` is cut. Frames already
    /// with the hub are still handled (a chat message being stored is stored).
    private func sendClose(context: ChannelHandlerContext, code: Int, reason: String) {
        guard !closeSent, !inactive else { return }
        closeSent = true
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.writeInteger(UInt16(truncatingIfNeeded: code))
        // A control frame's payload is at most 125 bytes (RFC 6455 §5.5).
        data.writeBytes(reason.utf8.prefix(123))
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: nil)
        let channel = context.channel
        closeTimer = context.eventLoop.scheduleTask(in: Self.closeGrace) { channel.close(promise: nil) }
    }
}

/// The hub's way to a ``SignalingConnectionHandler``: frames and the close hop to the
/// connection's event loop, in the order the hub sent them.
final class ChannelOutput: ConnectionOutput {
    private let handler: NIOLoopBound<SignalingConnectionHandler>
    private let eventLoop: any EventLoop

    init(handler: NIOLoopBound<SignalingConnectionHandler>, eventLoop: any EventLoop) {
        self.handler = handler
        self.eventLoop = eventLoop
    }

    func write(text: String) {
        let handler = handler
        eventLoop.execute { handler.value.send(text: text) }
    }

    func close() {
        let handler = handler
        eventLoop.execute { handler.value.closeFromHub() }
    }
}
