import Foundation
import NIOCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
import STUN
#endif

/// The relay's data path against a real `meshnode serve`: bursts of ChannelData both ways,
/// which the server coalesces into segmented writes (UDP GSO) where the kernel has them, must
/// reach the other side as the same datagrams, in order (RFC 8656 §11, §12.5); and the
/// routes the data path caches follow permissions and channel bindings as they change.
@Suite(.serialized)
struct TURNDataPathTests {
    static let user = ["--user", "alice:wonderland", "--allow-peer", "127.0.0.0/8"]
    static let channel: UInt16 = 0x4001
    /// Both data paths: the relay engine (the default) and NIO's channels (`--turn-nio-relay`).
    static let paths = ["engine", "nio"]
    static func flags(_ path: String) -> [String] { path == "nio" ? ["--turn-gso", "--turn-nio-relay"] : [] }

    /// A payload that names its place in the burst and has `size` bytes.
    static func payload(_ index: Int, size: Int) -> [UInt8] {
        (0..<size).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0) }
    }

    /// The sizes of a burst: runs of one size with a shorter and a longer datagram among them,
    /// so a batch must end early and a new one start.
    static let sizes = Array(repeating: 200, count: 30) + [150] + Array(repeating: 200, count: 9) + [900, 40, 40]

    @Test("a burst of ChannelData reaches the peer as the same datagrams in order, and the peer's burst comes back as ChannelData",
          arguments: paths)
    func burstsBothWays(path: String) async throws {
        let server = try await MeshNodeServer(Self.user + Self.flags(path))
        defer { server.stop() }
        let peer = try UDPPeer()
        let client = try TURNTestClient(port: server.udpPort)
        let allocation = try client.allocate()
        let relayed = try #require(try allocation.xorAddress(.xorRelayedAddress))
        #expect(try client.channelBind("127.0.0.1", port: peer.port, channel: Self.channel).isSuccess)

        var segmented = 0
        // A burst may be read one datagram at a time when the server is quick; a few bursts
        // make sure batches form at least once where the kernel has GSO.
        for round in 0..<5 {
            for (index, size) in Self.sizes.enumerated() {
                var frame = ByteBuffer()
                ChannelData.write(channel: Self.channel, data: ByteBuffer(bytes: Self.payload(index, size: size)), padded: false, into: &frame)
                client.sendRaw(frame)
            }
            for (index, size) in Self.sizes.enumerated() {
                let got = try #require(peer.receive(), "datagram \(index) of round \(round) did not reach the peer")
                #expect(got.bytes == Self.payload(index, size: size), "datagram \(index) of round \(round)")
                #expect(got.from.port == relayed.port)
            }
            for (index, size) in Self.sizes.enumerated() {
                peer.send(Self.payload(index, size: size), to: relayed)
            }
            for (index, size) in Self.sizes.enumerated() {
                var got = try #require(client.receiveRaw(timeout: 5), "datagram \(index) of round \(round) did not reach the client")
                let frame = try ChannelData(parsing: got)
                #expect(frame.channel == Self.channel)
                #expect(got.readableBytes == 4 + size, "no padding and nothing else over UDP")
                got.moveReaderIndex(forwardBy: 4)
                #expect(Array(got.readableBytesView) == Self.payload(index, size: size), "datagram \(index) of round \(round)")
            }
            segmented = try await Self.gsoDatagrams(server)
            if segmented > 0 || !System.supportsUDPSegmentationOffload { break }
        }
        if System.supportsUDPSegmentationOffload {
            #expect(segmented > 0, "no burst was sent with segmentation offload")
        }
    }

    @Test("the data path follows permissions: another port of a permitted IP gets Data indications, an unpermitted IP nothing, a new channel its own peer",
          arguments: paths)
    func routesFollowPermissionsAndChannels(path: String) async throws {
        let server = try await MeshNodeServer(Self.user + Self.flags(path))
        defer { server.stop() }
        let first = try UDPPeer()
        let second = try UDPPeer()
        let stranger = try UDPPeer(address: "127.0.0.2")
        let client = try TURNTestClient(port: server.udpPort)
        let relayed = try #require(try client.allocate().xorAddress(.xorRelayedAddress))
        #expect(try client.channelBind("127.0.0.1", port: first.port, channel: Self.channel).isSuccess)

        // Warm the cached routes with the first peer, both ways.
        client.sendRaw(Self.channelData(Self.channel, "to first"))
        #expect(first.receive()?.bytes == Array("to first".utf8))
        first.send(Array("from first".utf8), to: relayed)
        #expect(try ChannelData(parsing: try #require(client.receiveRaw(timeout: 5))).channel == Self.channel)

        // RFC 8656 §9: the permission covers the IP, every port: a second port of the same IP
        // without a channel reaches the client in a Data indication.
        second.send(Array("from second".utf8), to: relayed)
        let indication = try STUNMessage(parsing: try #require(client.receiveRaw(timeout: 5)))
        #expect(indication.type == STUNMessageType(.data, .indication))
        #expect(try indication.xorAddress(.xorPeerAddress)?.port == second.port)
        #expect(indication.attribute(.data).map { Array($0.readableBytesView) } == Array("from second".utf8))

        // An IP without a permission reaches nobody.
        stranger.send(Array("from stranger".utf8), to: relayed)
        // Binding a second channel to the second port moves that peer to the channel, and
        // ChannelData on each channel goes to its own peer.
        #expect(try client.channelBind("127.0.0.1", port: second.port, channel: Self.channel + 1).isSuccess)
        client.sendRaw(Self.channelData(Self.channel + 1, "to second"))
        client.sendRaw(Self.channelData(Self.channel, "to first again"))
        #expect(second.receive()?.bytes == Array("to second".utf8))
        #expect(first.receive()?.bytes == Array("to first again".utf8))
        second.send(Array("second on its channel".utf8), to: relayed)
        let onChannel = try ChannelData(parsing: try #require(client.receiveRaw(timeout: 5)))
        #expect(onChannel.channel == Self.channel + 1, "the stranger's datagram must not have come through first")
        #expect(Array(onChannel.data.readableBytesView) == Array("second on its channel".utf8))
        #expect(try await server.metrics().contains(#"meshnode_turn_dropped_packets_total{reason="no_permission"}"#))
    }

    static func channelData(_ number: UInt16, _ text: String) -> ByteBuffer {
        var frame = ByteBuffer()
        ChannelData.write(channel: number, data: ByteBuffer(string: text), padded: false, into: &frame)
        return frame
    }

    /// `meshnode_turn_gso_datagrams_total` once the server has published its tallies (each
    /// event loop adds them once a second).
    static func gsoDatagrams(_ server: MeshNodeServer) async throws -> Int {
        for _ in 0..<30 {
            let text = try await server.metrics()
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("meshnode_turn_gso_datagrams_total") }),
               let value = line.split(separator: " ").last.flatMap({ Double($0) }), value > 0 {
                return Int(value)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return 0
    }
}

/// A UDP peer on a loopback address: sends to the relayed address and reads what the relay
/// sends, with the sender's address.
final class UDPPeer {
    let fd: Int32
    let port: Int

    init(address: String = "127.0.0.1") throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        guard case .v4(let local) = try SocketAddress(ipAddress: address, port: 0) else { close(fd); throw TestFailure("IPv4 only") }
        var raw = local.address
        let bound = withUnsafePointer(to: &raw) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0 else { close(fd); throw TestFailure("bind(\(address)) failed: errno \(errno)") }
        var name = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &name) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        port = Int(UInt16(bigEndian: name.sin_port))
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8], to destination: SocketAddress) {
        guard case .v4(let address) = destination else { return }
        var raw = address.address
        _ = bytes.withUnsafeBytes { data in
            withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, data.baseAddress, data.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
    }

    /// The next datagram and its sender, or nil after 5 s.
    func receive() -> (bytes: [UInt8], from: SocketAddress)? {
        var storage = [UInt8](repeating: 0, count: 65_536)
        var from = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let count = storage.withUnsafeMutableBytes { buffer in
            withUnsafeMutablePointer(to: &from) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, buffer.baseAddress, buffer.count, 0, $0, &length) }
            }
        }
        guard count >= 0 else { return nil }
        return (Array(storage.prefix(count)), SocketAddress(from, host: ""))
    }
}
