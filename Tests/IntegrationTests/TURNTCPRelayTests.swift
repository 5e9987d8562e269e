import Foundation
import NIOCore
import STUN
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The RFC 6062 byte pipe between a client's data connection and its peer connection, played
/// against a real `meshnode serve` over real TCP sockets: a client that stops reading while its
/// peer floods (the relay must hold the peer back, not buffer without end), and a peer that
/// closes while bytes for the client are still queued in the relay (they must all arrive).
@Suite(.serialized)
struct TURNTCPRelayTests {
    /// A TCP allocation, a peer connection to its relayed address, and the client's data
    /// connection bound to it (RFC 6062 §4.3, §5.3, §5.4).
    struct Pipe {
        let control: TURNTestClient
        let peer: TURNTestClient
        let data: TURNTestClient
    }

    static func openPipe(_ server: MeshNodeServer, dataReceiveBuffer: Int32) throws -> Pipe {
        let control = try TURNTestClient(port: server.udpPort, stream: true)
        let relay = try #require(try control.allocate(transport: .tcp).xorAddress(.xorRelayedAddress)?.port)
        #expect(try control.createPermission("127.0.0.1").isSuccess)
        let peer = try TURNTestClient(port: relay, stream: true)
        let attempt = try STUNMessage(parsing: try #require(control.receiveRaw(timeout: 10), "no ConnectionAttempt"))
        #expect(attempt.type == STUNMessageType(.connectionAttempt, .indication))
        let id = try #require(try attempt.connectionID())
        let data = try TURNTestClient(port: server.udpPort, stream: true)
        var size = dataReceiveBuffer
        setsockopt(data.fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        let bound = try data.request(.connectionBind) { $0.append(.connectionID, uint32: id) }
        #expect(bound.isSuccess, "ConnectionBind: \(bound.type)")
        return Pipe(control: control, peer: peer, data: data)
    }

    /// The byte at stream offset `offset`: a pattern that a lost, repeated or reordered chunk breaks.
    static func pattern(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: offset % 251) }

    /// Sends the pattern from `offset` on, without waiting; the bytes the kernel took.
    static func sendSome(_ fd: Int32, from offset: Int, upTo end: Int, chunk: inout [UInt8]) -> Int {
        let count = min(chunk.count, end - offset)
        guard count > 0 else { return 0 }
        for i in 0..<count { chunk[i] = pattern(offset + i) }
        let sent = chunk.withUnsafeBytes { send(fd, $0.baseAddress, count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
        return max(sent, 0)
    }

    /// Reads what is there (at most `limit` bytes), without waiting, and checks it against the
    /// pattern; nil at end of stream.
    static func receiveSome(_ fd: Int32, at offset: Int, limit: Int, mismatch: inout Int?) -> Int? {
        var buffer = [UInt8](repeating: 0, count: limit)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, limit, Int32(MSG_DONTWAIT)) }
        if count == 0 { return nil }
        guard count > 0 else { return 0 }
        if mismatch == nil, let bad = (0..<count).first(where: { buffer[$0] != pattern(offset + $0) }) {
            mismatch = offset + bad
        }
        return count
    }

    @Test("a client that stops reading its data connection holds its flooding peer back (bounded relay buffer); every byte then arrives in order")
    func slowClientHoldsThePeerBack() async throws {
        let server = try await MeshNodeServer(["--user", "alice:wonderland", "--allow-peer", "127.0.0.0/8"], bind: ["127.0.0.1"])
        defer { server.stop() }
        let pipe = try Self.openPipe(server, dataReceiveBuffer: 64 * 1024)
        // The attacker's peer writes as fast as the kernel takes it while the client reads
        // nothing. Without backpressure the relay reads it all into memory (the flood stops
        // at `cap`); with it the peer's socket fills once the kernel buffers on the way
        // (tcp_wmem/tcp_rmem maxima here: 4 and 32 MiB) and the relay's 64 KiB queue are full.
        let cap = 256 << 20
        var sent = 0
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var lastProgress = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(30)
        while sent < cap, ContinuousClock.now < deadline, ContinuousClock.now - lastProgress < .milliseconds(1500) {
            let n = Self.sendSome(pipe.peer.fd, from: sent, upTo: cap, chunk: &chunk)
            if n > 0 {
                sent += n
                lastProgress = .now
            } else {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(sent < 96 << 20, "the peer wrote \(sent >> 20) MiB into a pipe whose client reads nothing: the relay does not hold it back")
        // The client reads now: every byte the peer wrote arrives, in order, and the peer is
        // let go again (its remaining writes pass).
        var received = 0
        var mismatch: Int?
        let readDeadline = ContinuousClock.now + .seconds(60)
        while received < sent, ContinuousClock.now < readDeadline {
            guard let n = Self.receiveSome(pipe.data.fd, at: received, limit: 256 * 1024, mismatch: &mismatch) else { break }
            received += n
            if n == 0 { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(received == sent, "the client received \(received) of \(sent) bytes")
        #expect(mismatch == nil, "the stream differs from what the peer sent at byte \(mismatch ?? -1)")
    }

    @Test("bytes queued in the relay for the client when the peer closes all reach the client before its connection ends (RFC 6062 §5.5)")
    func peerCloseDeliversQueuedBytes() async throws {
        let server = try await MeshNodeServer(["--user", "alice:wonderland", "--allow-peer", "127.0.0.0/8"], bind: ["127.0.0.1"])
        defer { server.stop() }
        let pipe = try Self.openPipe(server, dataReceiveBuffer: 16 * 1024)
        // The peer writes 4 MiB and closes; the client reads slowly all along, so when the
        // peer's end arrives the relay still holds bytes for the client (its 64 KiB queue).
        let total = 4 << 20
        var sent = 0
        var received = 0
        var mismatch: Int?
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let deadline = ContinuousClock.now + .seconds(60)
        while sent < total, ContinuousClock.now < deadline {
            sent += Self.sendSome(pipe.peer.fd, from: sent, upTo: total, chunk: &chunk)
            guard let n = Self.receiveSome(pipe.data.fd, at: received, limit: 8 * 1024, mismatch: &mismatch) else { break }
            received += n
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(sent == total, "the peer could write only \(sent) of \(total) bytes")
        shutdown(pipe.peer.fd, Int32(SHUT_WR))
        var ended = false
        while ContinuousClock.now < deadline {
            guard let n = Self.receiveSome(pipe.data.fd, at: received, limit: 256 * 1024, mismatch: &mismatch) else {
                ended = true
                break
            }
            received += n
            if n == 0 { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(received == total, "the client received \(received) of \(total) bytes before its data connection ended")
        #expect(mismatch == nil, "the stream differs from what the peer sent at byte \(mismatch ?? -1)")
        #expect(ended, "the relay closes the data connection after the peer's end (RFC 6062 §5.5)")
        // The relay's counter agrees: it read every byte from the peer and handed it on.
        var relayed = 0.0
        let metricDeadline = ContinuousClock.now + .seconds(5)
        repeat {
            relayed = try await server.metric(#"meshnode_turn_tcp_relayed_bytes_total{direction="to_client"}"#) ?? 0
            if Int(relayed) >= total { break }
            try await Task.sleep(for: .milliseconds(200))
        } while ContinuousClock.now < metricDeadline
        #expect(Int(relayed) == total, "the relay counted \(Int(relayed)) bytes to the client")
    }
}
