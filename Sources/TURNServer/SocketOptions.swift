import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ChannelOption where Self == ChannelOptions.Types.SocketOption {
    /// SO_REUSEPORT: several sockets share one port (UDP listeners per event loop; RFC 6062
    /// outgoing connections from a relayed address that also listens).
    static var reusePort: Self { ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT) }
    /// IPV6_V6ONLY: a `::` listener leaves IPv4 to the `0.0.0.0` listener on the same port.
    static var ipv6Only: Self { ChannelOptions.socket(SocketOptionLevel(IPPROTO_IPV6), IPV6_V6ONLY) }
}
