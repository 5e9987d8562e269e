import NIOCore

/// How the two connections of an RFC 6062 relay (a client's data connection and its peer
/// connection) carry bytes between them: how a slow side holds the other back, and how the end
/// of one ends the other without dropping what is still queued for it.
///
/// RFC 6062 relays a byte stream and promises no message boundaries: a read from one side
/// takes what the kernel has (NIO's read sizes vary from 256 bytes to 64 KiB), so a peer's
/// message may reach a TLS client in two records.
enum TCPRelayPipe {
    /// Backpressure: `reader` stops reading while `writer`'s outbound queue is above its high
    /// water mark (64 KiB by default) and reads again below the low one, so a slow side bounds
    /// what the relay holds for it. Safe from any event loop: `setOption` runs on `reader`'s,
    /// in the order the writability changes were seen.
    static func follow(writabilityOf writer: Channel, reader: Channel) {
        reader.setOption(.autoRead, value: writer.isWritable).whenFailure { _ in }
    }

    /// Ends `channel` after the bytes queued on it have been written: shutting its output first
    /// waits for pending writes (NIO fails them on a plain close) and sends FIN, or TLS
    /// close_notify; then the connection closes. RFC 6062 §5.5: when one connection of the
    /// pair closes, the server closes the other. A remote that stops reading cannot hold the
    /// connection open: it is closed after ``drainTimeout`` whatever is left.
    static func closeAfterPendingWrites(_ channel: Channel) {
        let eventLoop = channel.eventLoop
        eventLoop.execute {
            let flushed = eventLoop.makePromise(of: Void.self)
            let deadline = eventLoop.scheduleTask(in: drainTimeout) { channel.close(promise: nil) }
            channel.flush()
            channel.close(mode: .output, promise: flushed)
            flushed.futureResult.whenComplete { _ in
                deadline.cancel()
                channel.close(promise: nil)
            }
        }
    }

    /// How long the end of a relay waits for the other side to take the bytes queued for it.
    static let drainTimeout = TimeAmount.seconds(5)
}
