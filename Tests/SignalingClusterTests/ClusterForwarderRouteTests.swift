import Foundation
import PostgresNIO
@testable import Signaling
@testable import SignalingCluster
import Testing
import TestSupport

/// A participant's call setup to `forwarder` at a member that did not route its call (its own
/// member died and it logged in here: docs/cluster.md "Forwarded calls across members" item 5).
/// The member finds the host of the call of the caller's rooms in `room_calls` and hands the
/// message there; any room member can send such messages with made-up call ids, so one name
/// gets at most a few routes. The host's own check (by the key of the participant's `join`)
/// and the real restart are `testnet/cluster --only forwarded-failover`'s part.
@Suite("call setup to the host's forwarder from a member that did not route the call", .serialized, .timeLimit(.minutes(1)),
       .enabled(if: TestServer.available, TestServer.skipped))
struct ClusterForwarderRouteTests {
    static let authority = "127.0.0.1:8080"

    @Test("an sdp of a call placed elsewhere goes to the member hosting the call of the caller's room; a room member's made-up calls get at most 8 routes")
    func routesFoundInRoomCalls() async throws {
        let db = try await TestDatabase.make()
        var configuration = HubConfiguration()
        configuration.authorities = [Self.authority]
        let hub = SignalingHub(store: db.store, configuration: configuration, logger: db.logger, iceServers: { _, _ in [] })
        // This hub is member b; member a hosts the call of #ops (its row in `room_calls`).
        await hub.joinCluster(db.cluster.router(member: "b", hub: hub), online: [:])
        for sql in ["INSERT INTO room_members (room, member) VALUES ('#ops', 'mallory')",
                    "INSERT INTO room_calls (room, member, call) VALUES ('#ops', 'a', 'rc-1')"] {
            try await db.execute(sql)
        }
        let mallory = try await Connection.login(hub, "mallory", .generate())
        let eve = try await Connection.login(hub, "eve", .generate())

        // A name in no room with a call: this member's own forwarder, which is not logged in here.
        #expect(try await eve.sdp(call: "e-1") == "unavailable")
        // The attacker, a member of #ops not in its call, with made-up call ids: each is handed to
        // member a (acked; a drops it, as no participant signed it), until the 8th route.
        for index in 0..<SignalingHub.maxClusterForwarderRoutesPerCaller {
            #expect(try await mallory.sdp(call: "m-\(index)") == "ok", "sdp \(index)")
        }
        #expect(try await mallory.sdp(call: "m-next") == "rate-limited")
        // A call already routed still goes (its route is kept), and its hangup frees the route.
        #expect(try await mallory.sdp(call: "m-0") == "ok")
        #expect(try await mallory.send(.hangup, call: "m-0") == "ok")
        #expect(try await mallory.sdp(call: "m-next") == "ok")
        #expect(await hub.clusterForwarderRoutes.count == SignalingHub.maxClusterForwarderRoutesPerCaller)
    }

    /// One test connection straight on the hub.
    final class Connection: Sendable {
        let hub: SignalingHub
        let handle: ConnectionHandle
        let name: String
        let key: Identity
        let frames = Frames()
        let reader: Task<Void, Never>

        private init(hub: SignalingHub, name: String, key: Identity) async {
            self.hub = hub
            self.name = name
            self.key = key
            let (stream, sink) = AsyncStream.makeStream(of: ConnectionHandle.Outbound.self)
            handle = await hub.open(hostHint: "127.0.0.1", sink: sink)
            let frames = frames
            reader = Task {
                for await item in stream {
                    if case .frame(let text) = item { await frames.append(text) }
                }
            }
        }

        deinit { reader.cancel() }

        static func login(_ hub: SignalingHub, _ name: String, _ key: Identity) async throws -> Connection {
            let connection = await Connection(hub: hub, name: name, key: key)
            let nonce = try await connection.next { if case .challenge(let body) = $0.payload { body.nonce } else { nil } }
            let login = LoginBody(name: name, key: key.publicKeyBase64, node: authority,
                                  sig: key.sign(text: LoginBody.signedText(nonce: nonce, name: name, node: authority)))
            await hub.receive(SignalingCodec.encode(SignalingMessage(id: UUID().uuidString, from: "", to: "@node", payload: .login(login))),
                              on: connection.handle.id)
            _ = try await connection.next { if case .welcome = $0.payload { true } else { nil } }
            return connection
        }

        /// Sends a signed call-setup message to `forwarder`; its answer: "ok" or the error's code.
        func send(_ type: CallSetupType, call: String, sdp: String? = nil) async throws -> String {
            var payload = CallPayload(type: type, from: name, to: "forwarder", call: call, ts: Date().timeIntervalSince1970)
            if let sdp {
                payload.sdpType = "offer"
                payload.sdp = sdp
            }
            let id = UUID().uuidString
            let message = SignalingMessage(id: id, from: name, to: "forwarder", payload: .callSetup(type, CallSigning.sign(payload, with: key)))
            await hub.receive(SignalingCodec.encode(message), on: handle.id)
            return try await next { message in
                switch message.payload {
                case .ack(let body) where body.of == id: "ok"
                case .error(let body) where body.of == id: body.code.rawValue
                default: nil
                }
            }
        }

        func sdp(call: String) async throws -> String {
            try await send(.sdp, call: call, sdp: "v=0\r\n")
        }

        /// The first frame `match` maps to a value; earlier ones are skipped.
        func next<T>(_ match: (SignalingMessage) -> T?) async throws -> T {
            while true {
                let text = try await waitFor("a frame", limit: TestDeadline.event, interval: .milliseconds(2)) { await frames.take() }
                if let message = try? SignalingCodec.decode(text), let value = match(message) { return value }
            }
        }
    }

    actor Frames {
        var items: [String] = []
        func append(_ text: String) { items.append(text) }
        func take() -> String? { items.isEmpty ? nil : items.removeFirst() }
    }
}

/// A member answers `/ws` before it has joined the cluster (LISTEN, its presence cleared, the
/// others' read): a name that logs in then is announced when it joins, or the other members
/// would never route to it (testnet/cluster's watchers, which log in as soon as a member's page
/// answers, missed a room call's states so).
@Suite("a login before the member joined the cluster", .serialized, .timeLimit(.minutes(1)), .enabled(if: TestServer.available, TestServer.skipped))
struct ClusterEarlyLoginTests {
    @Test("a name logged in at a member before it joined the cluster is announced when it joins")
    func earlyLoginAnnounced() async throws {
        let db = try await TestDatabase.make()
        var configuration = HubConfiguration()
        configuration.authorities = [ClusterForwarderRouteTests.authority]
        let hub = SignalingHub(store: db.store, configuration: configuration, logger: db.logger, iceServers: { _, _ in [] })
        let early = try await ClusterForwarderRouteTests.Connection.login(hub, "early", .generate())
        let router = db.cluster.router(member: "a", hub: hub)
        let running = Task { try await router.run() }
        defer { running.cancel() }
        _ = try await waitFor("early's presence row at member a") {
            try await db.count("SELECT count(*)::int FROM presence WHERE name = 'early' AND member = 'a'") == 1 ? true : nil
        }
        #expect(early.name == "early")
    }
}
