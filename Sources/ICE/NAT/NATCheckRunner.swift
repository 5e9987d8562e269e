#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import STUN

/// A `HOST[:PORT]` argument: `198.51.100.2`, `stun.example:3478`, `[2001:db8::1]:3478`.
public struct STUNServerSpec: Sendable, Equatable {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String, defaultPort: Int = 3478) throws(ICEError) {
        var host = text
        var port = defaultPort
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw ICEError(.invalidServer, "'\(text)': missing ]") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()) else { throw ICEError(.invalidServer, "'\(text)': bad port") }
                port = p
            }
        } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
            host = String(text[..<colon])
            guard let p = Int(text[text.index(after: colon)...]) else { throw ICEError(.invalidServer, "'\(text)': bad port") }
            port = p
        }
        guard !host.isEmpty else { throw ICEError(.invalidServer, "'\(text)': no host") }
        // Port 0 ("any") only where the default is 0: a local address to bind.
        guard (defaultPort == 0 ? 0...65535 : 1...65535).contains(port) else {
            throw ICEError(.invalidServer, "'\(text)': port \(port) out of range")
        }
        self.host = host
        self.port = port
    }

    /// Resolves the host (numeric or by name, blocking).
    public func resolve() throws(ICEError) -> SocketAddress {
        do {
            return try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw ICEError(.invalidServer, "cannot resolve \(host): \(error)")
        }
    }
}

/// Runs ``NATBehaviorDiscovery`` on one blocking UDP socket: the I/O half of `meshnode nat-check`.
public enum NATCheckRunner {
    /// Discovers the NAT behaviour towards `server`. The socket is bound to `localAddress`, or to
    /// the address the kernel would use to reach the server and a free port. Bounded: it gives up
    /// after `overallLimit` whatever the server does.
    public static func run(server: SocketAddress, alternateServer: SocketAddress? = nil,
                           localAddress: SocketAddress? = nil, testTimeout: Duration = .seconds(3),
                           overallLimit: Duration = .seconds(60)) throws(ICEError) -> NATBehaviorReport {
        let family = server.protocol
        let bindTo: SocketAddress
        if let localAddress { bindTo = localAddress } else { bindTo = try sourceAddress(towards: server) }
        let fd = socket(family.rawValue, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw ICEError(.discoveryFailed, "socket: \(errnoText())") }
        defer { close(fd) }
        try withSockAddr(bindTo) { pointer, length throws(ICEError) in
            guard bind(fd, pointer, length) == 0 else { throw ICEError(.discoveryFailed, "bind \(bindTo.compactDescription): \(errnoText())") }
        }
        let local = try boundAddress(fd)

        var configuration = NATBehaviorDiscovery.Configuration(server: server, alternateServer: alternateServer, localAddress: local)
        configuration.testTimeout = testTimeout
        var machine = NATBehaviorDiscovery(configuration: configuration)
        let clock = ContinuousClock()
        let start = clock.now
        func elapsed() -> Duration { clock.now - start }

        var outputs = machine.start(now: elapsed())
        var buffer = [UInt8](repeating: 0, count: 2048)
        while elapsed() < overallLimit {
            for output in outputs {
                switch output {
                case let .send(datagram, to: destination):
                    try send(fd, datagram, to: destination)
                case let .done(report):
                    return report
                }
            }
            outputs = []
            guard let due = machine.nextTimeout else { break }
            let wait = max(due - elapsed(), .zero)
            let milliseconds = Int32(clamping: wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000 + 1)
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0 && errno != EINTR { throw ICEError(.discoveryFailed, "poll: \(errnoText())") }
            if ready > 0 {
                var storage = sockaddr_storage()
                var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let count = buffer.withUnsafeMutableBytes { bytes in
                    withUnsafeMutablePointer(to: &storage) { pointer in
                        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            recvfrom(fd, bytes.baseAddress, bytes.count, 0, $0, &length)
                        }
                    }
                }
                // ICMP errors surface as ECONNREFUSED on some paths: they are not answers.
                if count > 0, let source = socketAddress(storage) {
                    outputs = machine.receive(ByteBuffer(bytes: buffer[0..<count]), from: source, now: elapsed())
                }
            } else {
                outputs = machine.timerFired(now: elapsed())
            }
        }
        throw ICEError(.discoveryFailed, "gave up after \(overallLimit)")
    }

    /// The local address the kernel picks to reach `server` (a connected UDP socket sends nothing).
    public static func sourceAddress(towards server: SocketAddress) throws(ICEError) -> SocketAddress {
        let fd = socket(server.protocol.rawValue, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw ICEError(.discoveryFailed, "socket: \(errnoText())") }
        defer { close(fd) }
        try withSockAddr(server) { pointer, length throws(ICEError) in
            guard connect(fd, pointer, length) == 0 else {
                throw ICEError(.discoveryFailed, "no route to \(server.compactDescription): \(errnoText())")
            }
        }
        let address = try boundAddress(fd)
        return IPAddress(address)?.socketAddress(port: 0) ?? address
    }

    // MARK: sockaddr plumbing

    private static func send(_ fd: Int32, _ datagram: ByteBuffer, to destination: SocketAddress) throws(ICEError) {
        let bytes = Array(datagram.readableBytesView)
        try withSockAddr(destination) { pointer, length throws(ICEError) in
            let sent = bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, pointer, length) }
            // A refused or unreachable destination is a lost datagram, as far as the tests go.
            if sent < 0 && errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH && errno != EAGAIN {
                throw ICEError(.discoveryFailed, "sendto \(destination.compactDescription): \(errnoText())")
            }
        }
    }

    private static func boundAddress(_ fd: Int32) throws(ICEError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0, let address = socketAddress(storage) else { throw ICEError(.discoveryFailed, "getsockname: \(errnoText())") }
        return address
    }

    private static func socketAddress(_ storage: sockaddr_storage) -> SocketAddress? {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let address = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee } }
            return SocketAddress(address, host: "")
        case AF_INET6:
            let address = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee } }
            return SocketAddress(address, host: "")
        default:
            return nil
        }
    }

    private static func withSockAddr<T>(_ address: SocketAddress,
                                        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(ICEError) -> T) throws(ICEError) -> T {
        switch address {
        case let .v4(v4):
            var raw = v4.address
            return try withUnsafePointer(to: &raw) { pointer throws(ICEError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer throws(ICEError) in
                    try body(pointer, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case let .v6(v6):
            var raw = v6.address
            return try withUnsafePointer(to: &raw) { pointer throws(ICEError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer throws(ICEError) in
                    try body(pointer, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        case .unixDomainSocket:
            throw ICEError(.discoveryFailed, "not an IP address: \(address)")
        }
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}
