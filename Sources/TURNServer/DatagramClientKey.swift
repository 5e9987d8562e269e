import NIOCore

/// A UDP client's address and the listener it reached: the data path's key to the client's
/// allocation. It carries the same information as the allocation's ``FiveTuple`` (the
/// listener stands for the server address and the transport) in plain integers, so finding
/// the allocation of a ChannelData costs one hash of a few words instead of two socket
/// addresses and a transport name.
struct DatagramClientKey: Hashable {
    var listener: ObjectIdentifier
    var family: UInt8
    var port: UInt16
    var high: UInt64
    var low: UInt64

    init?(listener: ObjectIdentifier, client: SocketAddress) {
        self.listener = listener
        switch client {
        case .v4(let address):
            let raw = address.address
            family = 4
            port = raw.sin_port
            high = 0
            low = UInt64(raw.sin_addr.s_addr)
        case .v6(let address):
            var raw = address.address
            family = 6
            port = raw.sin6_port
            (high, low) = withUnsafeBytes(of: &raw.sin6_addr) { bytes in
                (bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
        case .unixDomainSocket:
            return nil
        }
    }
}
