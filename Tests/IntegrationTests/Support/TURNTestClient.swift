import Foundation
import ICE
import NIOCore
import TestSupport
#if canImport(Glibc)
import Glibc
import STUN
#endif

/// A small blocking TURN client over UDP or TCP, built on our STUN codec, for the refusal
/// tests: it sends exactly the requests a test wants and returns the server's raw answers.
final class TURNTestClient {
    let fd: Int32
    var username: String
    var password: String
    var realm: String?
    var nonce: String?
    let ipv6: Bool
    /// A TCP connection (RFC 8656 §3.1) instead of UDP: answers are read frame by frame.
    let stream: Bool
    /// Set when the server closed the TCP connection (a read returned end of file or a reset).
    private(set) var closedByServer = false
    /// Datagrams `transact` read while waiting for an answer that were not that answer, in
    /// the order they came: what the server sent unasked (Data indications, say).
    var unsolicited: [ByteBuffer] = []

    /// A client of the server at `host`:`port`; `stream` connects over TCP; `source` binds the
    /// client's address first (another loopback address is another source for per-IP caps).
    init(port: Int, host: String = "127.0.0.1", username: String = "alice", password: String = "wonderland",
         stream: Bool = false, source: String? = nil) throws {
        ipv6 = host.contains(":")
        self.stream = stream
        self.username = username
        self.password = password
        fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32((stream ? SOCK_STREAM : SOCK_DGRAM).rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        if let source {
            guard case .v4(let local) = try SocketAddress(ipAddress: source, port: 0) else { throw TestFailure("source must be IPv4") }
            var raw = local.address
            let bound = withUnsafePointer(to: &raw) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard bound == 0 else { close(fd); throw TestFailure("bind(\(source)) failed: errno \(errno)") }
        }
        let address = try SocketAddress(ipAddress: host, port: port)
        let result: Int32
        switch address {
        case .v4(let a):
            var raw = a.address
            result = withUnsafePointer(to: &raw) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        case .v6(let a):
            var raw = a.address
            result = withUnsafePointer(to: &raw) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        default:
            close(fd)
            throw TestFailure("not an IP address")
        }
        guard result == 0 else { close(fd); throw TestFailure("connect() failed: errno \(errno)") }
    }

    deinit { close(fd) }

    func sendRaw(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func sendRaw(_ buffer: ByteBuffer) { sendRaw(Array(buffer.readableBytesView)) }

    /// The next datagram (over TCP: the next STUN message), or nil after `timeout` seconds or
    /// when the server closed the connection.
    func receiveRaw(timeout: Double = 30) -> ByteBuffer? {
        guard stream else {
            setReceiveTimeout(timeout)
            var storage = [UInt8](repeating: 0, count: 65_536)
            let count = storage.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            return ByteBuffer(bytes: storage.prefix(count))
        }
        let deadline = Date().addingTimeInterval(timeout)
        guard let header = readExactly(20, deadline: deadline) else { return nil }
        let length = Int(header[2]) << 8 | Int(header[3])
        guard let body = readExactly(length, deadline: deadline) else { return nil }
        return ByteBuffer(bytes: header + body)
    }

    /// Waits at most `timeout` seconds for the server to close the TCP connection; true when
    /// it did. Whatever arrives meanwhile is read and dropped.
    func waitForClose(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var scratch = [UInt8](repeating: 0, count: 4096)
        while !closedByServer, deadline.timeIntervalSinceNow > 0 {
            setReceiveTimeout(deadline.timeIntervalSinceNow)
            let count = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 || (count < 0 && errno == ECONNRESET) { closedByServer = true }
        }
        return closedByServer
    }

    private func setReceiveTimeout(_ seconds: Double) {
        let timeout = max(seconds, 0.001)  // a zero SO_RCVTIMEO would wait forever
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    private func readExactly(_ count: Int, deadline: Date) -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: max(count, 1))
        while bytes.count < count {
            guard deadline.timeIntervalSinceNow > 0 else { return nil }
            setReceiveTimeout(deadline.timeIntervalSinceNow)
            let read = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, count - bytes.count, 0) }
            if read == 0 || (read < 0 && errno == ECONNRESET) {
                closedByServer = true
                return nil
            }
            guard read > 0 else { continue }
            bytes += chunk.prefix(read)
        }
        return bytes
    }

    /// Sends a request and waits for the response with its transaction ID, at most `timeout`
    /// seconds; anything else that comes meanwhile goes to `unsolicited`.
    func transact(_ request: STUNMessage, key: [UInt8]? = nil, timeout: Double = 30) throws -> STUNMessage {
        sendRaw(request.encode(integrity: key, fingerprint: true))
        let deadline = Date().addingTimeInterval(timeout)
        while deadline.timeIntervalSinceNow > 0 {
            guard let bytes = receiveRaw(timeout: deadline.timeIntervalSinceNow) else { break }
            guard let response = try? STUNMessage(parsing: bytes), response.transactionID == request.transactionID else {
                unsolicited.append(bytes)
                continue
            }
            return response
        }
        throw TestFailure("no response to \(request.type) within \(timeout) s")
    }

    var key: [UInt8] { LongTermCredentials.key(username: username, realm: realm ?? "", password: password) }

    /// Sends an authenticated request: learns realm and nonce from the 401 challenge first and
    /// follows a 438 with the fresh nonce it carries (RFC 8489 §9.2.5). It follows a few in a
    /// row: with a one-second nonce lifetime the fresh nonce may run out too before it is used.
    func request(_ method: STUNMethod, retryStale: Bool = true, build: (inout STUNMessage) -> Void = { _ in }) throws -> STUNMessage {
        try request(method, staleRetries: retryStale ? 5 : 0, build: build)
    }

    private func request(_ method: STUNMethod, staleRetries: Int, build: (inout STUNMessage) -> Void) throws -> STUNMessage {
        if nonce == nil {
            var probe = STUNMessage(type: STUNMessageType(method, .request))
            build(&probe)
            let challenge = try transact(probe)
            guard try challenge.errorCode()?.code == .unauthenticated else { return challenge }
            realm = challenge.realm
            nonce = challenge.nonce
        }
        var message = STUNMessage(type: STUNMessageType(method, .request))
        build(&message)
        message.append(.username, string: username)
        message.append(.realm, string: realm ?? "")
        message.append(.nonce, string: nonce ?? "")
        let response = try transact(message, key: key)
        if staleRetries > 0, try response.errorCode()?.code == .staleNonce {
            nonce = response.nonce
            return try request(method, staleRetries: staleRetries - 1, build: build)
        }
        return response
    }

    func allocate(family: STUNAddressFamily? = nil, transport: TURNTransportProtocol = .udp, build: (inout STUNMessage) -> Void = { _ in }) throws -> STUNMessage {
        try request(.allocate) {
            $0.appendRequestedTransport(transport)
            if let family { $0.appendAddressFamily(.requestedAddressFamily, family) }
            build(&$0)
        }
    }

    func createPermission(_ peer: String, port: Int = 5000) throws -> STUNMessage {
        let address = try SocketAddress(ipAddress: peer, port: port)
        return try request(.createPermission) { $0.appendXORAddress(.xorPeerAddress, address) }
    }

    func channelBind(_ peer: String, port: Int, channel: UInt16 = 0x4001) throws -> STUNMessage {
        let address = try SocketAddress(ipAddress: peer, port: port)
        return try request(.channelBind) {
            $0.appendChannelNumber(channel)
            $0.appendXORAddress(.xorPeerAddress, address)
        }
    }
}

extension STUNMessage {
    /// The error code of an error response, nil for a success.
    var code: Int? { (try? errorCode())?.code.rawValue }
    var isSuccess: Bool { type.messageClass == .successResponse }
}
