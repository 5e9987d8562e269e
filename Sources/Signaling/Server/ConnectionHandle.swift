/// The node's handle on one WebSocket connection: frames queued here are written by the
/// connection's writer task in order; `close()` ends the connection.
public final class ConnectionHandle: Sendable {
    /// What the writer task does next.
    public enum Outbound: Sendable {
        case frame(String)
        case close
    }

    public let id: Int
    /// The host the client used to reach the node (its `Host` header), for ICE server URLs.
    public let hostHint: String?
    /// The IP address the connection comes from (for a link this node dialled: the other
    /// node's), when known; dial-back only dials this address.
    public let remoteIP: String?
    private let sink: AsyncStream<Outbound>.Continuation

    public init(id: Int, hostHint: String?, remoteIP: String? = nil, sink: AsyncStream<Outbound>.Continuation) {
        self.id = id
        self.hostHint = hostHint
        self.remoteIP = remoteIP
        self.sink = sink
    }

    public func send(_ message: SignalingMessage) {
        send(text: SignalingCodec.encode(message))
    }

    public func send(text: String) {
        // A full queue means the client does not read: close it. Undelivered chat stays stored.
        if case .dropped = sink.yield(.frame(text)) { close() }
    }

    public func close() {
        sink.yield(.close)
        sink.finish()
    }
}
