/// The node's handle on one WebSocket connection: frames queued here are written in order;
/// `close()` ends the connection.
public final class ConnectionHandle: Sendable {
    /// What the writer task does next.
    public enum Outbound: Sendable {
        case frame(String)
        case close
    }

    /// Where the handle's frames go: an async stream read by a writer task (node links), or a
    /// channel handler that writes them on its event loop (`/ws`, ``ConnectionOutput``).
    public enum Sink: Sendable {
        case stream(AsyncStream<Outbound>.Continuation)
        case output(any ConnectionOutput)
    }

    public let id: Int
    /// The host the client used to reach the node (its `Host` header), for ICE server URLs.
    public let hostHint: String?
    /// The IP address the connection comes from (for a link this node dialled: the other
    /// node's), when known; dial-back only dials this address.
    public let remoteIP: String?
    private let sink: Sink
    /// Liveness, rate limit and chat name, shared by the hub and the chat fast path.
    let gate: ConnectionGate

    public convenience init(id: Int, hostHint: String?, remoteIP: String? = nil, sink: AsyncStream<Outbound>.Continuation) {
        self.init(id: id, hostHint: hostHint, remoteIP: remoteIP, sink: .stream(sink))
    }

    public convenience init(id: Int, hostHint: String?, remoteIP: String? = nil, sink: Sink) {
        let defaults = HubConfiguration()
        self.init(id: id, hostHint: hostHint, remoteIP: remoteIP, sink: sink,
                  gate: ConnectionGate(limiter: RateLimiter(rate: defaults.rate, burst: defaults.burst), now: ContinuousClock.now))
    }

    init(id: Int, hostHint: String?, remoteIP: String?, sink: Sink, gate: ConnectionGate) {
        self.id = id
        self.hostHint = hostHint
        self.remoteIP = remoteIP
        self.sink = sink
        self.gate = gate
    }

    public func send(_ message: SignalingMessage) {
        send(text: SignalingCodec.encode(message))
    }

    public func send(text: String) {
        switch sink {
        case .stream(let stream):
            // A full queue means the client does not read: close it. Undelivered chat stays stored.
            if case .dropped = stream.yield(.frame(text)) { close() }
        case .output(let output):
            output.write(text: text)
        }
    }

    public func close() {
        switch sink {
        case .stream(let stream):
            stream.yield(.close)
            stream.finish()
        case .output(let output):
            output.close()
        }
    }
}

/// Where a connection's frames go when a channel handler serves it (`/ws` on plain SwiftNIO,
/// `SignalingConnectionHandler`): called from the hub, on any thread.
public protocol ConnectionOutput: Sendable {
    /// Queues one text frame. A client that stops reading is closed once too many frames wait
    /// for it; undelivered chat stays stored.
    func write(text: String)
    /// Closes the connection (RFC 6455 §7.1.2: a Close frame first).
    func close()
}
