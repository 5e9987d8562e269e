#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import STUN

/// STUN Binding requests (RFC 8489 §3) sent to see whether a server answers and how fast:
/// the measuring half of dial-back (docs/mesh.md "Reachability") and of ``RelaySelector``.
/// Blocking sockets on a thread of their own, each call bounded in time.
public enum STUNProbe {
    /// The answer to one target.
    public struct Result: Sendable, Equatable {
        public var target: SocketAddress
        /// Round trip of each answered request.
        public var rtts: [Duration]
        public var sent: Int
        /// The address the server saw us at (XOR-MAPPED-ADDRESS of the first answer).
        public var mapped: SocketAddress?
        /// Why nothing came back, when nothing did.
        public var failure: String?

        public var answered: Bool { !rtts.isEmpty }
        /// The median round trip, nil when nothing was answered.
        public var medianRTT: Duration? {
            guard !rtts.isEmpty else { return nil }
            return rtts.sorted()[rtts.count / 2]
        }
    }

    /// Sends `count` Binding requests over UDP to every target, one round at a time from one
    /// socket (a round ends when every target answered or after `timeout`). Never takes longer
    /// than `count × timeout`.
    public static func udp(_ targets: [SocketAddress], count: Int = 3, timeout: Duration = .milliseconds(800)) async -> [Result] {
        await onThread { udpBlocking(targets, count: count, timeout: timeout) }
    }

    /// Connects over TCP (at most `timeout`), sends one Binding request and reads the answer
    /// (at most `timeout` more).
    public static func tcp(_ target: SocketAddress, timeout: Duration = .seconds(2)) async -> Result {
        await onThread { tcpBlocking(target, timeout: timeout) }
    }

    // MARK: - Blocking halves

    static func udpBlocking(_ targets: [SocketAddress], count: Int, timeout: Duration) -> [Result] {
        var results = targets.map { Result(target: $0, rtts: [], sent: 0) }
        guard !targets.isEmpty else { return results }
        var sockets: [Int32: Int32] = [:]  // address family → fd
        defer { for fd in sockets.values { close(fd) } }
        for family in Set(targets.map(\.protocol.rawValue)) {
            let fd = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
            if fd >= 0 { sockets[family] = fd }
        }
        let clock = ContinuousClock()
        for _ in 0..<max(1, count) {
            var waiting: [STUNTransactionID: (index: Int, sentAt: ContinuousClock.Instant)] = [:]
            for (index, target) in targets.enumerated() {
                guard let fd = sockets[target.protocol.rawValue] else {
                    results[index].failure = "no socket for \(target)"
                    continue
                }
                let request = STUNMessage(type: STUNMessageType(.binding, .request))
                let bytes = Array(request.encode(fingerprint: true).readableBytesView)
                results[index].sent += 1
                let sentAt = clock.now
                if sendTo(fd, bytes, target) {
                    waiting[request.transactionID] = (index, sentAt)
                } else {
                    results[index].failure = "cannot send: \(errnoText())"
                }
            }
            let deadline = clock.now + timeout
            while !waiting.isEmpty, clock.now < deadline {
                var polls = sockets.values.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                let ready = poll(&polls, nfds_t(polls.count), milliseconds(deadline - clock.now))
                guard ready > 0 else { continue }
                for entry in polls where entry.revents & Int16(POLLIN) != 0 {
                    guard let datagram = receive(entry.fd), let message = try? STUNMessage(parsing: datagram),
                          message.type.method == .binding, message.type.messageClass == .successResponse,
                          let (index, sentAt) = waiting.removeValue(forKey: message.transactionID) else { continue }
                    results[index].rtts.append(clock.now - sentAt)
                    if results[index].mapped == nil { results[index].mapped = try? message.xorAddress(.xorMappedAddress) }
                }
            }
        }
        for index in results.indices where !results[index].answered && results[index].failure == nil {
            results[index].failure = "no answer to \(results[index].sent) Binding request(s) within \(timeout) each"
        }
        return results
    }

    static func tcpBlocking(_ target: SocketAddress, timeout: Duration) -> Result {
        var result = Result(target: target, rtts: [], sent: 0)
        let fd = socket(target.protocol.rawValue, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else {
            result.failure = "socket: \(errnoText())"
            return result
        }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        let clock = ContinuousClock()
        let started = clock.now
        let connected = withSockAddr(target) { connect(fd, $0, $1) }
        if connected != 0 && errno != EINPROGRESS {
            result.failure = "connect: \(errnoText())"
            return result
        }
        var writable = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard poll(&writable, 1, milliseconds(timeout)) == 1,
              getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 else {
            result.failure = error != 0 ? "connect: \(String(cString: strerror(error)))" : "connect: no answer within \(timeout)"
            return result
        }
        let request = STUNMessage(type: STUNMessageType(.binding, .request))
        let bytes = Array(request.encode(fingerprint: true).readableBytesView)
        result.sent = 1
        let sentAt = clock.now
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            result.failure = "send: \(errnoText())"
            return result
        }
        // A STUN message over TCP is framed by its own length (RFC 8489 §6.2.2).
        var received: [UInt8] = []
        let deadline = sentAt + timeout
        while clock.now < deadline {
            if received.count >= 20 {
                let total = 20 + Int(received[2]) << 8 + Int(received[3])
                if received.count >= total {
                    guard let message = try? STUNMessage(parsing: ByteBuffer(bytes: received[0..<total])),
                          message.transactionID == request.transactionID, message.type.messageClass == .successResponse else {
                        result.failure = "not a Binding success response"
                        return result
                    }
                    result.rtts = [clock.now - sentAt]
                    result.mapped = try? message.xorAddress(.xorMappedAddress)
                    _ = started
                    return result
                }
            }
            var readable = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&readable, 1, milliseconds(deadline - clock.now)) == 1 else { continue }
            var chunk = [UInt8](repeating: 0, count: 1500)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                result.failure = count == 0 ? "the server closed the connection" : "recv: \(errnoText())"
                return result
            }
            received += chunk[0..<count]
        }
        result.failure = "no answer within \(timeout)"
        return result
    }

    // MARK: - Plumbing

    private static func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        // Blocking poll() must not hold one of the few cooperative threads.
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: work()) }
            thread.start()
        }
    }

    private static func milliseconds(_ duration: Duration) -> Int32 {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(0, ms + 1))
    }

    private static func sendTo(_ fd: Int32, _ bytes: [UInt8], _ target: SocketAddress) -> Bool {
        withSockAddr(target) { pointer, length in
            bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, pointer, length) } == bytes.count
        }
    }

    private static func receive(_ fd: Int32) -> ByteBuffer? {
        var buffer = [UInt8](repeating: 0, count: 1500)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return count > 0 ? ByteBuffer(bytes: buffer[0..<count]) : nil
    }

    private static func withSockAddr<T>(_ address: SocketAddress, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        switch address {
        case let .v4(v4):
            var raw = v4.address
            return withUnsafePointer(to: &raw) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        case let .v6(v6):
            var raw = v6.address
            return withUnsafePointer(to: &raw) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        case .unixDomainSocket:
            var raw = sockaddr()
            return body(&raw, 0)
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
