import NIOCore

/// How the server reaches a TURN client: a UDP listener and the client's address, or the
/// client's own TCP/TLS connection.
enum ClientLink {
    case datagram(Channel, SocketAddress)
    case stream(Channel)

    var isStream: Bool { if case .stream = self { true } else { false } }

    /// Queues bytes for the client; `flush` sends them now (responses), otherwise the loop
    /// flushes at the end of a read burst (relayed data, letting NIO batch with sendmmsg).
    func send(_ buffer: ByteBuffer, flush: Bool) {
        switch self {
        case .datagram(let channel, let address):
            let envelope = AddressedEnvelope(remoteAddress: address, data: buffer)
            if flush { channel.writeAndFlush(envelope, promise: nil) } else { channel.write(envelope, promise: nil) }
        case .stream(let channel):
            if flush { channel.writeAndFlush(buffer, promise: nil) } else { channel.write(buffer, promise: nil) }
        }
    }

    var channel: Channel {
        switch self {
        case .datagram(let channel, _), .stream(let channel): channel
        }
    }
}

/// The transport a client reached the server over (RFC 8656 §2: part of the 5-tuple).
public enum ClientTransport: String, Hashable, Sendable {
    case udp, tcp, tls
}

/// Client address, server address and transport: identifies an allocation (RFC 8656 §2).
struct FiveTuple: Hashable {
    var client: SocketAddress
    var server: SocketAddress
    var transport: ClientTransport
}
