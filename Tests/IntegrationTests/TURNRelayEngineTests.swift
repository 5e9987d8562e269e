import Foundation
import NIOCore
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
import STUN
#endif

/// The relay engine (docs/turn.md, "Data path") against a real `meshnode serve`: each UDP
/// client's datagrams reach the engine on a socket connected to that client, so clients that
/// share the listener must never see each other's data, and a deleted allocation's sockets
/// must be gone before the same client allocates again from the same address.
@Suite(.serialized)
struct TURNRelayEngineTests {
    static let user = TURNDataPathTests.user

    /// The Swift runtime's worker threads set their own niceness (0 for the default quality of
    /// service), and threads inherit it from whoever creates them: without care the data path
    /// ran at nice 0 in a node started at nice -10 (bench/run) and lost the CPU to the very
    /// processes it relays for (a relay p99 of 150–200 ms). Nice 7 here: lowering needs no
    /// privilege, so the test means the same as root or not.
    @Test("the relay engines and the TURN event loops run at the niceness the node was started with")
    func threadsKeepTheNodesNiceness() async throws {
        let server = try await MeshNodeServer(Self.user + ["--threads", "2"], niceness: 7)
        defer { server.stop() }
        var turn: [(name: String, nice: Int)] = []
        // The threads name themselves and take the niceness as they start: shortly after the banner.
        for _ in 0..<50 {
            turn = Self.threads(of: server.process.pid).filter { $0.name == "mn-turn-relay" || $0.name == "mn-turn-loop" }
            if turn.count == 4, turn.allSatisfy({ $0.nice == 7 }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(turn.filter { $0.name == "mn-turn-relay" }.count == 2, "\(turn)")
        #expect(turn.filter { $0.name == "mn-turn-loop" }.count == 2, "\(turn)")
        for thread in turn {
            #expect(thread.nice == 7, "\(thread.name) runs at nice \(thread.nice)")
        }
    }

    /// Name and niceness of each thread of `pid`, from /proc (stat field 19 is the niceness).
    static func threads(of pid: pid_t) -> [(name: String, nice: Int)] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { tid in
            guard let name = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // Fields after the name: state is field 3, niceness field 19.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 16, let nice = Int(fields[16]) else { return nil }
            return (name.trimmingCharacters(in: .whitespacesAndNewlines), nice)
        }
    }

    /// RelayEngineGroup: with two engines, allocations gather on the first while the rate is
    /// low (fewer wake-ups per datagram) and go back to their own engine when the first is
    /// busy. A move must lose nothing and keep both directions of an allocation working: every
    /// datagram of every round is counted at both ends, before, during and after the moves.
    @Test("with two threads, allocations gather on one engine at a low rate and spread again at a high one, losing nothing")
    func allocationsGatherAndSpread() async throws {
        // Gather below 2,000 datagrams/s, spread above 4,000 on the first engine.
        let server = try await MeshNodeServer(Self.user + ["--threads", "2", "--turn-consolidate-below", "2000", "--user-quota", "20"])
        defer { server.stop() }
        // 12 clients: all on one loop's listener has a chance of 2^-11 (SO_REUSEPORT hashing);
        // the moves counter below then says so.
        let clients = try (0..<12).map { _ in try TURNTestClient(port: server.udpPort) }
        let peers = try clients.map { _ in try UDPPeer() }
        var relayed: [SocketAddress] = []
        for (client, peer) in zip(clients, peers) {
            relayed.append(try #require(try client.allocate().xorAddress(.xorRelayedAddress)))
            #expect(try client.channelBind("127.0.0.1", port: peer.port).isSuccess)
        }

        /// One datagram each way per allocation, checked by content at both ends.
        func roundTrip(_ label: String) throws {
            for (index, client) in clients.enumerated() {
                client.sendRaw(TURNDataPathTests.channelData(0x4001, "\(label) up \(index)"))
            }
            for (index, peer) in peers.enumerated() {
                let got = try #require(peer.receive(), "\(label): peer \(index) got nothing")
                #expect(got.bytes == Array("\(label) up \(index)".utf8))
                peer.send(Array("\(label) down \(index)".utf8), to: relayed[index])
            }
            for (index, client) in clients.enumerated() {
                let frame = try ChannelData(parsing: try #require(client.receiveRaw(timeout: 5), "\(label): client \(index) got nothing"))
                #expect(Array(frame.data.readableBytesView) == Array("\(label) down \(index)".utf8))
            }
        }

        // Quiet: the second engine gives its allocations to the first within about a second.
        try roundTrip("before")
        var gathered = false
        for _ in 0..<100 where !gathered {
            let text = try await server.metrics()
            gathered = Self.metric(text, #"meshnode_turn_engine_allocations{engine="0"}"#) == 12
                && Self.metric(text, #"meshnode_turn_engine_allocations{engine="1"}"#) == 0
                && Self.metric(text, #"meshnode_turn_engine_moves_total{to="primary"}"#) >= 1
            if !gathered { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(gathered, "the allocations did not gather on the first engine within 10 s")
        try roundTrip("gathered")

        // Busy: bursts of 20 datagrams per allocation (240 per round, a few ms each) put the
        // first engine far above 4,000/s; the allocations of the second loop go home. Every
        // datagram is counted at its peer, through the move.
        var spread = false
        var round = 0
        while !spread, round < 200 {
            round += 1
            for (index, client) in clients.enumerated() {
                for i in 0..<20 { client.sendRaw(TURNDataPathTests.channelData(0x4001, "busy \(round) \(index) \(i)")) }
            }
            for (index, peer) in peers.enumerated() {
                for i in 0..<20 {
                    let got = try #require(peer.receive(), "round \(round): peer \(index) lost datagram \(i)")
                    #expect(got.bytes == Array("busy \(round) \(index) \(i)".utf8))
                }
            }
            if round % 10 == 0 {
                let text = try await server.metrics()
                spread = Self.metric(text, #"meshnode_turn_engine_moves_total{to="home"}"#) >= 1
                    && Self.metric(text, #"meshnode_turn_engine_allocations{engine="1"}"#) >= 1
            }
        }
        #expect(spread, "the allocations did not go back to the second engine after \(round) busy rounds")
        try roundTrip("spread")
    }

    /// The value of the metric line that starts with `name`, or -1.
    static func metric(_ text: String, _ name: String) -> Double {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } ?? -1
    }

    @Test("two clients on one listener each reach only their own peer, both ways")
    func clientsStayApart() async throws {
        let server = try await MeshNodeServer(Self.user)
        defer { server.stop() }
        let peers = [try UDPPeer(), try UDPPeer()]
        let clients = [try TURNTestClient(port: server.udpPort), try TURNTestClient(port: server.udpPort)]
        var relayed: [SocketAddress] = []
        for (client, peer) in zip(clients, peers) {
            relayed.append(try #require(try client.allocate().xorAddress(.xorRelayedAddress)))
            // The same channel number on both allocations: only the socket tells them apart.
            #expect(try client.channelBind("127.0.0.1", port: peer.port, channel: 0x4001).isSuccess)
        }
        for round in 0..<20 {
            for (index, client) in clients.enumerated() {
                client.sendRaw(TURNDataPathTests.channelData(0x4001, "client \(index) round \(round)"))
            }
            for (index, peer) in peers.enumerated() {
                let got = try #require(peer.receive(), "peer \(index) round \(round)")
                #expect(got.bytes == Array("client \(index) round \(round)".utf8))
                #expect(got.from.port == relayed[index].port)
                peer.send(Array("peer \(index) round \(round)".utf8), to: relayed[index])
            }
            for (index, client) in clients.enumerated() {
                let frame = try ChannelData(parsing: try #require(client.receiveRaw(timeout: 5), "client \(index) round \(round)"))
                #expect(Array(frame.data.readableBytesView) == Array("peer \(index) round \(round)".utf8))
            }
        }
    }

    @Test("after Refresh with lifetime 0 the old relayed address is dead, and a new allocation from the same address relays (RFC 8656 §7.3)")
    func reallocationFromTheSameAddress() async throws {
        let server = try await MeshNodeServer(Self.user)
        defer { server.stop() }
        let peer = try UDPPeer()
        let client = try TURNTestClient(port: server.udpPort)
        let first = try #require(try client.allocate().xorAddress(.xorRelayedAddress))
        #expect(try client.channelBind("127.0.0.1", port: peer.port).isSuccess)
        client.sendRaw(TURNDataPathTests.channelData(0x4001, "first"))
        #expect(peer.receive()?.bytes == Array("first".utf8))

        let refresh = try client.request(.refresh) { $0.append(.lifetime, uint32: 0) }
        #expect(refresh.isSuccess)
        peer.send(Array("to a deleted allocation".utf8), to: first)
        #expect(client.receiveRaw(timeout: 1) == nil, "a deleted allocation relayed")

        let second = try #require(try client.allocate().xorAddress(.xorRelayedAddress))
        #expect(try client.channelBind("127.0.0.1", port: peer.port, channel: 0x4002).isSuccess)
        client.sendRaw(TURNDataPathTests.channelData(0x4002, "second"))
        let got = try #require(peer.receive())
        #expect(got.bytes == Array("second".utf8))
        #expect(got.from.port == second.port)
        peer.send(Array("back".utf8), to: second)
        let frame = try ChannelData(parsing: try #require(client.receiveRaw(timeout: 5)))
        #expect(frame.channel == 0x4002)
        // The old channel died with its allocation: ChannelData on it goes nowhere.
        client.sendRaw(TURNDataPathTests.channelData(0x4001, "stale channel"))
        client.sendRaw(TURNDataPathTests.channelData(0x4002, "after stale"))
        #expect(peer.receive()?.bytes == Array("after stale".utf8))
    }

    @Test("a stranger flooding the relayed address reaches neither the client nor the loop, and the client's flow goes on")
    func strangerFlood() async throws {
        let server = try await MeshNodeServer(Self.user)
        defer { server.stop() }
        let peer = try UDPPeer()
        let stranger = try UDPPeer(address: "127.0.0.2")
        let client = try TURNTestClient(port: server.udpPort)
        let relayed = try #require(try client.allocate().xorAddress(.xorRelayedAddress))
        #expect(try client.channelBind("127.0.0.1", port: peer.port).isSuccess)
        for i in 0..<20_000 { stranger.send(Array("flood \(i)".utf8), to: relayed) }
        peer.send(Array("real".utf8), to: relayed)
        let frame = try ChannelData(parsing: try #require(client.receiveRaw(timeout: 5)))
        #expect(Array(frame.data.readableBytesView) == Array("real".utf8), "a stranger's datagram reached the client")
        // Every flood datagram the kernel queued was counted as dropped without a permission.
        var dropped = 0.0
        for _ in 0..<30 where dropped == 0 {
            let text = try await server.metrics()
            dropped = text.split(separator: "\n").first { $0.hasPrefix(#"meshnode_turn_dropped_packets_total{reason="no_permission"}"#) }
                .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } ?? 0
            if dropped == 0 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(dropped > 1_000, "dropped \(dropped)")
    }

    @Test("an allocation holds at most 128 permissions: one more gets 508, and an existing one can still be refreshed (RFC 8656 §9.2)")
    func permissionCap() async throws {
        let server = try await MeshNodeServer(Self.user)
        defer { server.stop() }
        let client = try TURNTestClient(port: server.udpPort)
        #expect(try client.allocate().isSuccess)
        // 128 peers in two requests of 64 XOR-PEER-ADDRESS attributes each.
        for half in 0..<2 {
            let answer = try client.request(.createPermission) { message in
                for i in 0..<64 { message.appendXORAddress(.xorPeerAddress, try! SocketAddress(ipAddress: "127.1.\(half).\(i + 1)", port: 9)) }
            }
            #expect(answer.isSuccess, "request \(half): \(answer.code ?? 0)")
        }
        #expect(try client.createPermission("127.2.0.1").code == 508)
        #expect(try client.channelBind("127.2.0.1", port: 9).code == 508)
        #expect(try client.createPermission("127.1.0.1").isSuccess, "refreshing a held permission takes no room")
        #expect(try client.channelBind("127.1.1.1", port: 9).isSuccess)
    }
}
