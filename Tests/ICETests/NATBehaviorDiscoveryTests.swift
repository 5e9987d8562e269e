import ICE
import NIOCore
import Testing
import STUN

/// A simulated path for the sans-IO discovery: one NAT (or none) in front of the socket, and an
/// RFC 5780 server on two IPs and two ports. Every datagram goes through the model; nothing
/// touches a socket or a clock.
struct SimulatedPath {
    enum Server { case rfc5780, noOtherAddress, ignoresChangeRequest, rejectsChangeRequest }

    static let local = try! SocketAddress(ipAddress: "10.0.0.2", port: 5000)
    static let publicIP = "203.0.113.7"
    static let primary = try! SocketAddress(ipAddress: "198.51.100.2", port: 3478)
    static let other = try! SocketAddress(ipAddress: "198.51.100.3", port: 3479)

    var mapping: NATMapping
    var filtering: NATFiltering
    var udpBlocked = false
    var server = Server.rfc5780
    /// Datagrams from the client to drop, by the order they are sent (0-based).
    var dropRequests: Set<Int> = []
    var sentCount = 0
    /// Requests as the server saw them: (destination, CHANGE-REQUEST flags).
    var requests: [(to: SocketAddress, change: UInt32?)] = []

    private var ports: [String: Int] = [:]
    private var nextPort = 40000
    /// Remote endpoints the inside has sent to, as "ip:port".
    private var contacted: Set<String> = []

    init(mapping: NATMapping, filtering: NATFiltering) {
        self.mapping = mapping
        self.filtering = filtering
    }

    private mutating func mapped(towards destination: SocketAddress) -> SocketAddress {
        if mapping == .none { return Self.local }
        let key: String
        switch mapping {
        case .none, .eim: key = "any"
        case .adm: key = destination.ipAddress!
        case .apdm: key = destination.compactDescription
        }
        if ports[key] == nil {
            ports[key] = mapping == .eim ? Self.local.port! : nextPort
            nextPort += 1
        }
        return try! SocketAddress(ipAddress: Self.publicIP, port: ports[key]!)
    }

    private func allowedIn(from source: SocketAddress) -> Bool {
        switch filtering {
        case .eif: true
        case .adf: contacted.contains { $0.hasPrefix(source.ipAddress! + ":") }
        case .apdf: contacted.contains(source.compactDescription)
        }
    }

    /// The client sends `datagram` to `destination`; returns what reaches the client back.
    mutating func deliver(_ datagram: ByteBuffer, to destination: SocketAddress) -> (ByteBuffer, SocketAddress)? {
        defer { sentCount += 1 }
        if udpBlocked || dropRequests.contains(sentCount) { return nil }
        let mappedAddress = mapped(towards: destination)
        contacted.insert(destination.compactDescription)
        let request = try! STUNMessage(parsing: datagram)
        let change = try! request.uint32(.changeRequest)
        requests.append((destination, change))

        var changeIP = (change ?? 0) & 0x4 != 0
        var changePort = (change ?? 0) & 0x2 != 0
        switch server {
        case .ignoresChangeRequest: (changeIP, changePort) = (false, false)
        case .rejectsChangeRequest where change != nil:
            var error = STUNMessage(type: STUNMessageType(.binding, .errorResponse), transactionID: request.transactionID)
            error.appendErrorCode(.unknownAttribute)
            return (error.encode(), destination)
        default: break
        }
        let receivedOnPrimaryIP = destination.ipAddress == Self.primary.ipAddress
        let receivedOnPrimaryPort = destination.port == Self.primary.port
        let ip = (receivedOnPrimaryIP != changeIP) ? Self.primary.ipAddress! : Self.other.ipAddress!
        let port = (receivedOnPrimaryPort != changePort) ? Self.primary.port! : Self.other.port!
        let source = try! SocketAddress(ipAddress: ip, port: port)

        var response = STUNMessage(type: STUNMessageType(.binding, .successResponse), transactionID: request.transactionID)
        response.appendXORAddress(.xorMappedAddress, mappedAddress)
        if server != .noOtherAddress {
            response.appendAddress(.otherAddress, Self.other)
            response.appendAddress(.responseOrigin, source)
        }
        guard allowedIn(from: source) else { return nil }
        return (response.encode(fingerprint: true), source)
    }
}

/// Drives a discovery over a simulated path with a virtual clock; returns the report and the
/// virtual time it took. Responses to the tests in `delayed` are held back until a later test
/// has begun (they arrive late).
func discover(_ path: inout SimulatedPath, alternate: SocketAddress? = nil,
              delayed: Set<NATTest> = []) -> (NATBehaviorReport, Duration) {
    var configuration = NATBehaviorDiscovery.Configuration(
        server: SimulatedPath.primary, alternateServer: alternate, localAddress: SimulatedPath.local)
    configuration.testTimeout = .seconds(3)
    var machine = NATBehaviorDiscovery(configuration: configuration)
    var now = Duration.zero
    var outputs = machine.start(now: now)
    var held: [(ByteBuffer, SocketAddress)] = []
    for _ in 0..<200 {
        var next: [NATBehaviorDiscovery.Output] = []
        for output in outputs {
            switch output {
            case let .done(report):
                return (report, now)
            case let .send(datagram, destination):
                let change = (try? STUNMessage(parsing: datagram).uint32(.changeRequest)) ?? nil
                let isFilteringII = change == 0x6
                if !isFilteringII && !held.isEmpty {
                    for (response, source) in held { next += machine.receive(response, from: source, now: now) }
                    held = []
                }
                if let (response, source) = path.deliver(datagram, to: destination) {
                    if isFilteringII && delayed.contains(.filteringChangeIPAndPort) {
                        held.append((response, source))
                    } else {
                        next += machine.receive(response, from: source, now: now)
                    }
                }
            }
        }
        if next.isEmpty, let due = machine.nextTimeout {
            now = due
            next = machine.timerFired(now: now)
        }
        outputs = next
        if outputs.isEmpty { break }
    }
    Issue.record("discovery did not finish")
    return (NATBehaviorReport(localAddress: SimulatedPath.local, server: SimulatedPath.primary), now)
}

@Suite("RFC 5780 NAT behaviour discovery (sans-IO)")
struct NATBehaviorDiscoveryTests {
    @Test("every DESIGN.md NAT type is named right", arguments: [
        (NATMapping.eim, NATFiltering.eif, "eim-eif"),
        (.eim, .adf, "eim-adf"),
        (.eim, .apdf, "eim-apdf"),
        (.apdm, .apdf, "apdm-apdf"),
        (.adm, .apdf, "adm-apdf"),
        (.none, .eif, "none"),
    ])
    func classifies(mapping: NATMapping, filtering: NATFiltering, name: String) {
        var path = SimulatedPath(mapping: mapping, filtering: filtering)
        let (report, _) = discover(&path)
        #expect(report.name == name, "\(report.notes)")
        #expect(report.mapping == mapping)
        #expect(report.filtering == filtering)
        #expect(report.isComplete)
        #expect(report.notes.isEmpty)
        #expect(report.otherAddress == SimulatedPath.other)
    }

    @Test("no answer to test I is udp-blocked, after one test timeout")
    func udpBlocked() {
        var path = SimulatedPath(mapping: .eim, filtering: .apdf)
        path.udpBlocked = true
        let (report, elapsed) = discover(&path)
        #expect(report.name == "udp-blocked")
        #expect(report.udpBlocked && report.mapping == nil && report.filtering == nil)
        #expect(elapsed == .seconds(3))
        #expect(report.tests.count == 1)
        #expect(report.tests[0].outcome == .timeout)
        // 250 ms, doubling, capped at 1 s: sent at 0, 0.25, 0.75, 1.75, 2.75.
        #expect(report.tests[0].transmissions == 5)
    }

    @Test("filtering runs before mapping, with the right CHANGE-REQUEST flags and destinations")
    func orderAndFlags() {
        var path = SimulatedPath(mapping: .apdm, filtering: .apdf)
        let (report, _) = discover(&path)
        #expect(report.tests.map(\.test) == [.binding, .filteringChangeIPAndPort, .filteringChangePort, .mappingAlternateIP, .mappingAlternateIPAndPort])
        let alternateIPPrimaryPort = try! SocketAddress(ipAddress: "198.51.100.3", port: 3478)
        let firstOfEach = path.requests.reduce(into: [(SocketAddress, UInt32?)]()) { list, request in
            if !list.contains(where: { $0.0 == request.to && $0.1 == request.change }) { list.append((request.to, request.change)) }
        }
        #expect(firstOfEach.map(\.0) == [SimulatedPath.primary, SimulatedPath.primary, SimulatedPath.primary, alternateIPPrimaryPort, SimulatedPath.other])
        #expect(firstOfEach.map(\.1) == [nil, 0x6, 0x2, nil, nil])
    }

    @Test("an endpoint-independent mapping skips mapping test III; no NAT skips II and III")
    func mappingShortcuts() {
        var eim = SimulatedPath(mapping: .eim, filtering: .eif)
        #expect(!discover(&eim).0.tests.map(\.test).contains(.mappingAlternateIPAndPort))
        var open = SimulatedPath(mapping: .none, filtering: .eif)
        let tests = discover(&open).0.tests.map(\.test)
        #expect(tests == [.binding, .filteringChangeIPAndPort])
    }

    @Test("a public address behind a filtering firewall is none-apdf")
    func firewalledPublicHost() {
        var path = SimulatedPath(mapping: .none, filtering: .apdf)
        let report = discover(&path).0
        #expect(report.name == "none-apdf")
        #expect(report.mapping == NATMapping.none && report.filtering == .apdf)
    }

    @Test("lost requests are retransmitted with the same transaction")
    func retransmission() {
        var path = SimulatedPath(mapping: .eim, filtering: .adf)
        path.dropRequests = [0, 1]
        let (report, _) = discover(&path)
        #expect(report.name == "eim-adf")
        #expect(report.tests[0].transmissions == 3)
    }

    @Test("a response that arrives after its test timed out still counts")
    func lateResponse() {
        var path = SimulatedPath(mapping: .eim, filtering: .eif)
        let (report, _) = discover(&path, delayed: [.filteringChangeIPAndPort])
        #expect(report.filtering == .eif)
        #expect(report.name == "eim-eif")
    }

    @Test("a server without OTHER-ADDRESS leaves the behaviour unknown")
    func noOtherAddress() {
        var path = SimulatedPath(mapping: .eim, filtering: .eif)
        path.server = .noOtherAddress
        let (report, _) = discover(&path)
        #expect(report.name == "unknown")
        #expect(!report.isComplete)
        #expect(report.tests.map(\.test) == [.binding])
        #expect(report.notes.contains { $0.contains("OTHER-ADDRESS") })
    }

    @Test("with --alt-stun a server without OTHER-ADDRESS still gives the mapping")
    func alternateServerGivesMapping() {
        var path = SimulatedPath(mapping: .apdm, filtering: .apdf)
        path.server = .noOtherAddress
        let (report, _) = discover(&path, alternate: SimulatedPath.other)
        #expect(report.mapping == .apdm)
        #expect(report.filtering == nil)
        #expect(report.name == "unknown")
    }

    @Test("an alternate server on the primary port cannot tell adm from apdm, and says so")
    func alternateOnPrimaryPort() {
        var path = SimulatedPath(mapping: .apdm, filtering: .apdf)
        path.server = .noOtherAddress
        let samePort = try! SocketAddress(ipAddress: "198.51.100.3", port: 3478)
        let (report, _) = discover(&path, alternate: samePort)
        #expect(report.mapping == nil)
        #expect(report.tests.map(\.test) == [.binding, .mappingAlternateIP])
        #expect(report.notes.contains { $0.contains("cannot be told apart") })
        var eim = SimulatedPath(mapping: .eim, filtering: .apdf)
        eim.server = .noOtherAddress
        #expect(discover(&eim, alternate: samePort).0.mapping == .eim)
    }

    @Test("a server that ignores CHANGE-REQUEST is caught, not taken for endpoint-independent filtering")
    func ignoredChangeRequest() {
        var path = SimulatedPath(mapping: .eim, filtering: .apdf)
        path.server = .ignoresChangeRequest
        let (report, _) = discover(&path)
        #expect(report.filtering == nil)
        #expect(report.mapping == .eim)
        #expect(report.notes.contains { $0.contains("ignored CHANGE-REQUEST") })
    }

    @Test("a 420 answer to CHANGE-REQUEST leaves filtering unknown")
    func rejectedChangeRequest() {
        var path = SimulatedPath(mapping: .eim, filtering: .eif)
        path.server = .rejectsChangeRequest
        let (report, _) = discover(&path)
        #expect(report.filtering == nil)
        #expect(report.notes.contains { $0.contains("420") })
    }

    @Test("garbage, unrelated and duplicate datagrams are ignored")
    func ignoresNoise() throws {
        var machine = NATBehaviorDiscovery(configuration: .init(server: SimulatedPath.primary, localAddress: SimulatedPath.local))
        let outputs = machine.start(now: .zero)
        guard case let .send(datagram, _) = outputs.first else { Issue.record("nothing sent"); return }
        let request = try STUNMessage(parsing: datagram)
        #expect(machine.receive(ByteBuffer(bytes: [1, 2, 3]), from: SimulatedPath.primary, now: .zero).isEmpty)
        var stranger = STUNMessage(type: STUNMessageType(.binding, .successResponse))
        stranger.appendXORAddress(.xorMappedAddress, SimulatedPath.local)
        #expect(machine.receive(stranger.encode(), from: SimulatedPath.primary, now: .zero).isEmpty)
        // An answer without a mapped address ends test I as unusable.
        let empty = STUNMessage(type: STUNMessageType(.binding, .successResponse), transactionID: request.transactionID)
        let done = machine.receive(empty.encode(), from: SimulatedPath.primary, now: .milliseconds(10))
        guard case let .done(report) = done.first else { Issue.record("not done"); return }
        #expect(report.name == "unknown")
        #expect(report.notes.contains { $0.contains("unusable") })
        #expect(machine.receive(empty.encode(), from: SimulatedPath.primary, now: .milliseconds(20)).isEmpty)
        #expect(machine.nextTimeout == nil)
    }

    @Test("early timer calls do nothing; retransmission waits double each time up to the cap")
    func timers() {
        var machine = NATBehaviorDiscovery(configuration: .init(server: SimulatedPath.primary, localAddress: SimulatedPath.local))
        _ = machine.start(now: .zero)
        #expect(machine.nextTimeout == .milliseconds(250))
        #expect(machine.timerFired(now: .milliseconds(100)).isEmpty)
        #expect(machine.timerFired(now: .milliseconds(250)).count == 1)
        #expect(machine.nextTimeout == .milliseconds(750))
        #expect(machine.timerFired(now: .milliseconds(750)).count == 1)
        #expect(machine.nextTimeout == .milliseconds(1750))
        #expect(machine.timerFired(now: .milliseconds(1750)).count == 1)
        #expect(machine.nextTimeout == .milliseconds(2750))
        _ = machine.timerFired(now: .milliseconds(2750))
        #expect(machine.nextTimeout == .seconds(3))
        guard case let .done(report) = machine.timerFired(now: .seconds(3)).first else { Issue.record("not done"); return }
        #expect(report.udpBlocked)
    }

    @Test("HOST[:PORT] arguments", arguments: [
        ("198.51.100.2", "198.51.100.2", 3478),
        ("198.51.100.2:3479", "198.51.100.2", 3479),
        ("stun.example:19302", "stun.example", 19302),
        ("[2001:db8::1]:3478", "2001:db8::1", 3478),
        ("[2001:db8::1]", "2001:db8::1", 3478),
        ("2001:db8::1", "2001:db8::1", 3478),
    ])
    func serverSpec(text: String, host: String, port: Int) throws {
        #expect(try STUNServerSpec(parsing: text) == STUNServerSpec(host: host, port: port))
    }

    @Test("a local address may leave the port to the kernel; a server may not")
    func localPortZero() throws {
        #expect(try STUNServerSpec(parsing: "10.0.1.2", defaultPort: 0) == STUNServerSpec(host: "10.0.1.2", port: 0))
        #expect { try STUNServerSpec(parsing: "198.51.100.2:0") } throws: { ($0 as? ICEError)?.code == .invalidServer }
    }

    @Test("bad HOST[:PORT] arguments are refused", arguments: ["", ":3478", "host:", "host:70000", "[::1", "[::1]x"])
    func badServerSpec(text: String) {
        #expect { try STUNServerSpec(parsing: text) } throws: { ($0 as? ICEError)?.code == .invalidServer }
    }
}
