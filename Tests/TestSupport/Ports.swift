#if canImport(Glibc)
import Glibc
#endif

/// A port on 127.0.0.1 free for both UDP and TCP when asked: the kernel picks it, the sockets
/// are closed again, and the caller hands the number to a program that binds it.
public func freeLoopbackPort() throws -> Int {
    for _ in 0..<20 {
        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(udp) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(udp, $0, length) == 0 && getsockname(udp, $0, &length) == 0 }
        }
        guard bound else { continue }
        let tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(tcp) }
        let tcpBound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(tcp, $0, length) == 0 }
        }
        if tcpBound { return Int(UInt16(bigEndian: address.sin_port)) }
    }
    throw TestFailure("no free port on 127.0.0.1")
}

/// Whether a TCP connection to 127.0.0.1:`port` is accepted now.
public func acceptsTCP(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
