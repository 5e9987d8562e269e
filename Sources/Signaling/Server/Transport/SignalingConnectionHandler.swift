import Logging
import NIOCore

/// One signaling WebSocket connection on plain SwiftNIO, after the upgrade (issue 17): the
/// last handler of the connection's pipeline, right behind the socket. It reads the frames
/// itself (``WebSocketFrameReader``) and writes them with their header in front, so a frame is
/// one hop of the pipeline each way. It keeps no task while the connection is idle. A chat to a
/// peer of this node and a recipient's ack take the hub's fast path here on the event loop
/// (SignalingHub+FastChat.swift: no task, no actor), without waiting for the previous one's
/// commit (``PipelinedWrites``: the store answers them in order); any other text frame goes to
/// the hub in a short task of its own, once every write before it is answered. So the order
/// holds; the hub's frames and the store's answers come back through the loop's
/// ``LoopOutbox``. Frames that arrive while the hub is busy with earlier ones go to it together
/// in the next task.
///
/// The state is a few words: the hub's handle of the connection, the frames waiting (at most
/// ``maxWaiting``; beyond that the socket is not read, which is TCP's back-pressure on the
/// client), and where the close handshake stands.
final class SignalingConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What this connection is for.
    enum Role {
        /// A signaling connection: registered with `hub` once added.
        case serve(hub: SignalingHub, drain: ConnectionDrain, outboxes: LoopOutboxes, hostHint: String?, remoteIP: String?)
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
    /// Fragments of one message at most (RFC 6455 §5.4 sets no limit; a client sends one).
    static let maxFragments = 256
    /// How long a client has to answer our Close (RFC 6455 §7.1.1); then the TCP connection is cut.
    static let closeGrace: TimeAmount = .seconds(2)

    private let role: Role
    private var context: ChannelHandlerContext?
    private var reader = WebSocketFrameReader(maxMessage: SignalingEndpoint.hardFrameLimit, maxFragments: maxFragments)
    /// The client broke the protocol: its connection is failing and nothing more is read.
    private var failed = false
    /// The hub's handle of this connection, once `hub.open` has returned; dropped when the
    /// channel goes (it leads back to this handler through ``ChannelOutput``).
    private var connection: ConnectionHandle?
    /// A frame is with the hub, the connection is being opened, or it waits for its writes in
    /// flight (``writes``): the next frame waits.
    private var busy = true
    /// The fast path's writes the store has not answered yet.
    private let writes = PipelinedWrites()
    /// Where the store's answers and the hub's frames for this connection arrive.
    private var outbox: LoopOutbox?
    private var waiting: [Waiting] = []
    /// A `read` held back because `waiting` is full.
    private var readHeld = false
    private var unwritable = 0
    /// The outbox's task flushes this connection once it has written all it holds: frames
    /// sent in one burst go out in one `writev`.
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
        case .serve(let hub, let drain, let outboxes, let hostHint, let remoteIP):
            drain.opened()
            let loop = context.eventLoop
            let bound = NIOLoopBound(self, eventLoop: loop)
            drainToken = drain.whenDraining {
                loop.execute { bound.value.drainStarted() }
            }
            let outbox = outboxes.outbox(for: loop)
            self.outbox = outbox
            let output = ChannelOutput(handler: bound, outbox: outbox)
            Task {
                let handle = await hub.open(hostHint: hostHint, remoteIP: remoteIP, output: output)
                loop.execute { bound.value.opened(handle) }
            }
        }
    }

    private func opened(_ handle: ConnectionHandle) {
        if inactive {
            if case .serve(let hub, _, _, _, _) = role { Task { await hub.closed(handle.id) } }
            return
        }
        connection = handle
        busy = false
        pump()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        do {
            try reader.read(unwrapInboundIn(data)) { message in received(message, context: context) }
        } catch {
            fail(context: context, error)
            return
        }
        pump()
    }

    private func received(_ message: WebSocketFrameReader.Message, context: ChannelHandlerContext) {
        switch message {
        case .text(let text):
            waiting.append(.text(text))
        case .binary:
            waiting.append(.binary)
        case .ping(let data):
            // RFC 6455 §5.5.3: a Pong carries the Ping's application data.
            guard !closeSent else { return }
            context.writeAndFlush(wrapOutboundOut(Self.frame(opcode: 0xA, data, allocator: context.channel.allocator)), promise: nil)
        case .pong:
            break
        case .close(let code):
            if closeSent {
                context.close(promise: nil)
                return
            }
            // RFC 6455 §5.5.1: answer with a Close echoing the status code, then the server
            // closes the TCP connection (§7.1.1).
            closeSent = true
            var echo = context.channel.allocator.buffer(capacity: 2)
            if let code { echo.writeInteger(code) }
            context.writeAndFlush(wrapOutboundOut(Self.frame(opcode: 0x8, echo, allocator: context.channel.allocator)))
                .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): a Close with the violation's code and reason,
    /// then TCP closes; what the client sends after it is not read.
    private func fail(context: ChannelHandlerContext, _ violation: WebSocketFrameReader.Violation) {
        failed = true
        waiting.removeAll()
        guard !closeSent else {
            context.close(promise: nil)
            return
        }
        closeSent = true
        context.writeAndFlush(wrapOutboundOut(Self.closeFrame(code: Int(violation.code), reason: violation.reason, allocator: context.channel.allocator)))
            .assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// A server's frame of `payload` (RFC 6455 §5.2).
    static func frame(opcode: UInt8, _ payload: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var payload = payload
        var frame = allocator.buffer(capacity: ByteBuffer.webSocketHeaderLength(payload: payload.readableBytes) + payload.readableBytes)
        frame.writeWebSocketHeader(opcode: opcode, length: payload.readableBytes)
        frame.writeBuffer(&payload)
        return frame
    }

    /// A Close frame with a status code and a reason (RFC 6455 §5.5.1).
    static func closeFrame(code: Int, reason: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var data = allocator.buffer(capacity: 2 + reason.utf8.count)
        data.writeInteger(UInt16(truncatingIfNeeded: code))
        // A control frame's payload is at most 125 bytes (RFC 6455 §5.5).
        data.writeBytes(reason.utf8.prefix(123))
        return frame(opcode: 0x8, data, allocator: allocator)
    }

    /// Hands the waiting frames on: chats and acks to the fast path, one after the other
    /// without waiting for their writes (at most ``PipelinedWrites/limit`` in flight); any other
    /// frame to the hub once every write before it is answered, and the frames after it wait
    /// for the hub.
    private func pump() {
        guard let connection, let outbox, case .serve(let hub, _, _, _, _) = role, let context else { return }
        let loop = context.eventLoop
        while !busy, !waiting.isEmpty {
            if case .text(let text) = waiting[0] {
                if writes.inFlight >= PipelinedWrites.limit {
                    // Resumed by the last write's answer (LoopOutbox.Item.resume).
                    busy = writes.waitUntilIdle()
                    continue
                }
                let bound = NIOLoopBound(self, eventLoop: loop)
                let pipelined = writes
                pipelined.begin()
                let taken = hub.receiveFast(text, on: connection) { reply in
                    // The store's thread: the reply first, then (if the loop waits) the resume,
                    // both through the loop's one list, so in this order.
                    if let reply { outbox.post(.send(bound, reply)) }
                    if pipelined.end() { outbox.post(.resume(bound)) }
                }
                if taken {
                    waiting.removeFirst()
                    continue
                }
                writes.cancel()
            }
            // The hub reads what the writes before this frame did: they must be answered.
            if writes.waitUntilIdle() {
                busy = true
                break
            }
            toHub(hub, id: connection.id, loop: loop)
        }
        resumeReading(context: context)
    }

    /// What waits up to the next chat or ack goes to the hub in one task: under load one hop
    /// to the hub and one back per batch, not per frame; the chat behind a ping still takes
    /// the fast path. The frames stay in order: the hub takes them one after the other.
    private func toHub(_ hub: SignalingHub, id: Int, loop: any EventLoop) {
        busy = true
        var count = 1
        while count < waiting.count {
            if case .text(let text) = waiting[count], ChatEnvelope.scan(text) != nil { break }
            count += 1
        }
        let batch = Array(waiting.prefix(count))
        waiting.removeFirst(count)
        let bound = NIOLoopBound(self, eventLoop: loop)
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

    /// Every write in flight was answered while the connection waited for that.
    func writesAnswered() {
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
        if case .serve(let hub, let drain, _, _, _) = role {
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
        // A failed socket: the connection ends.
        context.close(promise: nil)
    }

    // MARK: Outbound

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { unwritable = 0 }
        context.fireChannelWritabilityChanged()
    }

    /// Writes one frame without flushing it; true when the caller must call ``flushWritten()``
    /// (no flush is pending yet), false when one is or the frame was not written.
    func write(text: String) -> Bool {
        guard let context, !inactive, !closeSent else { return false }
        // The header and the text in one buffer: one iovec of `writev` per frame.
        let length = text.utf8.count
        var buffer = context.channel.allocator.buffer(capacity: ByteBuffer.webSocketHeaderLength(payload: length) + length)
        buffer.writeWebSocketHeader(opcode: 0x1, length: length)
        buffer.writeString(text)
        context.write(wrapOutboundOut(buffer), promise: nil)
        if !context.channel.isWritable {
            unwritable += 1
            if unwritable >= Self.maxUnwritable {
                context.close(promise: nil)
                return false
            }
        }
        guard !flushPending else { return false }
        flushPending = true
        return true
    }

    /// Flushes what ``write(text:)`` wrote.
    func flushWritten() {
        flushPending = false
        guard !inactive, let context else { return }
        context.flush()
    }

    /// The hub ends the connection (login timeout, silence, a dropped session).
    func closeFromHub() {
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
        context.writeAndFlush(wrapOutboundOut(Self.closeFrame(code: code, reason: reason, allocator: context.channel.allocator)), promise: nil)
        let channel = context.channel
        closeTimer = context.eventLoop.scheduleTask(in: Self.closeGrace) { channel.close(promise: nil) }
    }
}

/// The hub's way to a ``SignalingConnectionHandler``: frames and the close go to the
/// connection's event loop through its ``LoopOutbox``, in the order the hub sent them.
final class ChannelOutput: ConnectionOutput {
    private let handler: NIOLoopBound<SignalingConnectionHandler>
    private let outbox: LoopOutbox

    init(handler: NIOLoopBound<SignalingConnectionHandler>, outbox: LoopOutbox) {
        self.handler = handler
        self.outbox = outbox
    }

    func write(text: String) {
        outbox.post(.send(handler, text))
    }

    func close() {
        outbox.post(.close(handler))
    }
}
