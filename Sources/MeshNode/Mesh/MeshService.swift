import Foundation
import ICE
import Logging
import NIOCore
import Signaling
import Synchronization
import STUN
import TURNServer

/// This node's part in the mesh (docs/mesh.md): it publishes the node's signed record every
/// gossip interval, asks linked nodes to dial its STUN/TURN ports back (reachability), measures
/// the round trip to the other nodes, keeps the relays to hand out at login ranked, and answers
/// other nodes' dial-back requests.
final class MeshService: Sendable {
    static let version = "0.1.0"
    /// Relays of other nodes listed in `welcome.iceServers`.
    static let relaysHandedOut = 3
    /// A verdict is checked again after this long.
    static let recheck: Duration = .seconds(300)

    struct RankedRelay: Sendable {
        var record: NodeRecord
        var rttMs: Double
    }

    private struct State {
        var reachability: NodeRecord.Reachability = .unknown
        var checkedBy: [String] = []
        var checkedAt: ContinuousClock.Instant?
        var dialbackMs: Double?
        var verifiedUDP: Set<String> = []
        var verifiedTCP: Set<String> = []
        /// Node key → median STUN round trip (ms), nil when it did not answer.
        var rtt: [String: Double?] = [:]
        var ranked: [RankedRelay] = []
        var changed = true
        var seq = 0
        /// Set by `leave()`: no ordinary record may follow the leaving one.
        var left = false
    }

    let hub: SignalingHub
    let turn: TURNServer
    let identity: Identity
    let address: String
    let interval: Duration
    let credentials: MeshCredentials
    let logger: Logger
    private let state = Mutex(State())

    init(hub: SignalingHub, turn: TURNServer, credentials: MeshCredentials, address: String, interval: Duration, logger: Logger) {
        self.hub = hub
        self.turn = turn
        self.identity = credentials.identity
        self.address = address
        self.interval = interval
        self.credentials = credentials
        self.logger = logger
    }

    /// Hooks the hub calls for dial-back requests and changes.
    var hooks: MeshHooks {
        MeshHooks(dialback: { body, observed in await Self.dialBack(body, observed: observed) },
                  changed: { [self] in markChanged() })
    }

    func markChanged() { state.withLock { $0.changed = true } }

    var reachability: NodeRecord.Reachability { state.withLock { $0.reachability } }

    // MARK: - The loop

    /// Until cancelled: publish, check reachability, measure, rank.
    func run() async {
        await hub.setMeshHooks(hooks)
        var nextPublish = ContinuousClock.now
        var nextProbe = ContinuousClock.now
        let probeEvery = max(interval * 2, .seconds(2))
        while !Task.isCancelled {
            let changed = state.withLock { s in defer { s.changed = false }; return s.changed }
            let now = ContinuousClock.now
            if changed { await refreshMembers() }
            if await needsCheck() {
                await checkReachability()
                nextPublish = .now
            }
            if changed || now >= nextProbe {
                await measure()
                nextProbe = .now + probeEvery
            }
            if now >= nextPublish {
                await publish()
                nextPublish = .now + interval
            }
            try? await Task.sleep(for: min(interval / 4, .milliseconds(250)))
        }
    }

    /// A last record that tells the mesh this node is gone.
    func leave() async {
        // Once: a graceful stop leaves before it closes inbound links (NodeDrain), and the
        // signaling service's own stop comes after.
        let alreadyLeft = state.withLock { state in
            defer { state.left = true }
            return state.left
        }
        guard !alreadyLeft else { return }
        await publish(leaving: true)
        try? await Task.sleep(for: .milliseconds(300))
    }

    // MARK: - Own record

    func ownRecord(leaving: Bool = false, links: [String]) -> NodeRecord {
        let s = state.withLock { $0 }
        var stun: [String] = []
        var turnURLs: [String] = []
        for listener in turn.listeners {
            guard let ip = listener.address.ipAddress, let port = listener.address.port, ip != "0.0.0.0", ip != "::" else { continue }
            let hostPort = ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
            // Once verified, only what other nodes reached is published.
            let verified = switch listener.transport {
            case .udp: s.verifiedUDP.contains(hostPort)
            case .tcp: s.verifiedTCP.contains(hostPort)
            case .tls: s.verifiedUDP.contains { $0.hasPrefix(ip.contains(":") ? "[\(ip)]:" : "\(ip):") }
            }
            guard s.reachability != .reachable || verified else { continue }
            for uri in listener.iceServerURIs(host: ip) {
                if uri.scheme.isTURN { turnURLs.append(uri.description) } else { stun.append(uri.description) }
            }
        }
        let hasTURN = turn.configuration.restSecret != nil
        let seq = state.withLock { s in
            s.seq = max(s.seq + 1, Int(Date().timeIntervalSince1970 * 1000))
            return s.seq
        }
        let lifetime = max(Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18, 0.5) * 6
        return NodeRecord(node: address, key: identity.publicKeyBase64, stun: stun, turn: turnURLs, reachability: s.reachability,
                          relay: s.reachability == .reachable && hasTURN && !turnURLs.isEmpty,
                          capacity: turn.configuration.totalQuota, load: turn.activeAllocations, version: Self.version,
                          seq: seq, expires: Date().timeIntervalSince1970 + min(lifetime, MeshDirectory.maximumLifetime),
                          links: links, leaving: leaving ? true : nil)
    }

    func publish(leaving: Bool = false) async {
        guard leaving || !state.withLock({ $0.left }) else { return }
        let record = ownRecord(leaving: leaving, links: await hub.linkedNodes)
        await hub.publish(record.signed(by: identity))
    }

    private func refreshMembers() async {
        let keys = Set(await hub.meshEntries.map(\.record.key))
        credentials.setMembers(keys)
    }

    // MARK: - Reachability

    private func needsCheck() async -> Bool {
        let (reachability, checkedAt) = state.withLock { ($0.reachability, $0.checkedAt) }
        if let checkedAt, ContinuousClock.now - checkedAt < (reachability == .unknown ? interval : Self.recheck) { return false }
        return !(await hub.linkedNodes.isEmpty)
    }

    /// The addresses this node asks others to dial: its concrete UDP and TCP listeners.
    func dialbackRequest() -> DialbackBody {
        var udp: [String] = []
        var tcp: [String] = []
        for listener in turn.listeners {
            guard let ip = listener.address.ipAddress, let port = listener.address.port, ip != "0.0.0.0", ip != "::" else { continue }
            let hostPort = ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
            switch listener.transport {
            case .udp: udp.append(hostPort)
            case .tcp: tcp.append(hostPort)
            case .tls: break
            }
        }
        return DialbackBody(udp: Array(udp.prefix(4)), tcp: Array(tcp.prefix(DialbackBody.maximumAddresses - min(udp.count, 4))))
    }

    /// Asks up to three linked nodes at once to dial back; reachable when one of them reached
    /// a UDP STUN address, unreachable when all answered and none did, unknown otherwise.
    func checkReachability() async {
        let helpers = Array(await hub.linkedNodes.prefix(3))
        let request = dialbackRequest()
        let started = ContinuousClock.now
        let answers: [(String, DialbackResultBody?)] = await withTaskGroup(of: (String, DialbackResultBody?).self) { group in
            for helper in helpers {
                group.addTask { [hub] in (helper, await hub.requestDialback(from: helper, request)) }
            }
            var collected: [(String, DialbackResultBody?)] = []
            for await answer in group { collected.append(answer) }
            return collected
        }
        let elapsed = milliseconds(ContinuousClock.now - started)
        var udp: Set<String> = []
        var tcp: Set<String> = []
        var verifiers: [String] = []
        for (helper, answer) in answers {
            guard let answer else { continue }
            let ok = answer.results.filter(\.ok)
            if ok.contains(where: { $0.transport == "udp" }) { verifiers.append(helper) }
            for outcome in ok { if outcome.transport == "udp" { udp.insert(outcome.address) } else { tcp.insert(outcome.address) } }
            for outcome in answer.results where !outcome.ok {
                logger.info("mesh: dialback failed", metadata: ["helper": "\(helper)", "address": "\(outcome.transport) \(outcome.address)", "reason": "\(outcome.reason ?? "-")"])
            }
        }
        let answered = answers.filter { $0.1 != nil }.map(\.0)
        let verdict: NodeRecord.Reachability = !udp.isEmpty ? .reachable : (answered.isEmpty ? .unknown : .unreachable)
        let previous = state.withLock { s in
            let previous = s.reachability
            s.reachability = verdict
            s.checkedBy = verdict == .reachable ? verifiers.sorted() : answered.sorted()
            s.checkedAt = .now
            s.dialbackMs = elapsed
            s.verifiedUDP = udp
            s.verifiedTCP = tcp
            return previous
        }
        if previous != verdict || verdict != .unknown {
            logger.notice("mesh: reachability", metadata: ["verdict": "\(verdict.rawValue)", "checked-by": "\(answered)",
                                                          "udp": "\(udp.sorted())", "tcp": "\(tcp.sorted())", "ms": "\(Int(elapsed))"])
        }
    }

    /// The helper's side: dials the addresses of a request, but only those at the IP address
    /// the request came from (so that no node can be used to send traffic to a third party).
    static func dialBack(_ body: DialbackBody, observed: String?) async -> [DialbackOutcome] {
        var outcomes: [DialbackOutcome] = []
        var udpTargets: [(String, SocketAddress)] = []
        var tcpTargets: [(String, SocketAddress)] = []
        for (transport, list) in [("udp", body.udp), ("tcp", body.tcp)] {
            for text in list {
                guard let url = ICEServerURI("stun:" + text), url.hostIsNumeric, let target = try? SocketAddress(ipAddress: url.host, port: url.port) else {
                    outcomes.append(DialbackOutcome(transport: transport, address: text, ok: false, reason: "not an ip:port address"))
                    continue
                }
                guard let observed, IPAddress(string: observed) == IPAddress(string: url.host) else {
                    outcomes.append(DialbackOutcome(transport: transport, address: text, ok: false,
                                                    reason: "not dialled: the link comes from \(observed ?? "an unknown address"), not \(url.host)"))
                    continue
                }
                if transport == "udp" { udpTargets.append((text, target)) } else { tcpTargets.append((text, target)) }
            }
        }
        async let udpResults = STUNProbe.udp(udpTargets.map(\.1), count: 2, timeout: .seconds(1))
        var tcpOutcomes: [DialbackOutcome] = []
        for (text, target) in tcpTargets {
            let result = await STUNProbe.tcp(target, timeout: .seconds(2))
            tcpOutcomes.append(DialbackOutcome(transport: "tcp", address: text, ok: result.answered,
                                               rttMs: result.medianRTT.map(milliseconds), reason: result.failure))
        }
        for ((text, _), result) in zip(udpTargets, await udpResults) {
            outcomes.append(DialbackOutcome(transport: "udp", address: text, ok: result.answered,
                                            rttMs: result.medianRTT.map(milliseconds), reason: result.failure))
        }
        return outcomes + tcpOutcomes
    }

    // MARK: - Round trips and relay ranking

    /// Measures the STUN round trip to every other node and ranks the relays among them.
    func measure() async {
        let records = await hub.meshEntries.map(\.record)
        var candidates: [RelaySelector.Candidate] = []
        for record in records {
            // Only at the IP where this node proved the record's key (dial-back): a record
            // cannot make this node probe someone else's address.
            guard let url = Self.atNode(record.stun, of: record).compactMap(ICEServerURI.init).first,
                  let target = try? SocketAddress(ipAddress: url.host, port: url.port) else { continue }
            candidates.append(RelaySelector.Candidate(id: record.key, stun: target))
        }
        let measured = await RelaySelector(probes: 3, timeout: .milliseconds(500), keepUnanswered: true).rank(candidates)
        var rtt: [String: Double?] = [:]
        for entry in measured { rtt[entry.candidate.id] = entry.rttMilliseconds }
        let byKey = Dictionary(records.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        let ranked = measured.compactMap { entry -> RankedRelay? in
            guard let record = byKey[entry.candidate.id], record.relay, !record.isFull, let ms = entry.rttMilliseconds else { return nil }
            return RankedRelay(record: record, rttMs: ms)
        }
        state.withLock { s in
            s.rtt = rtt
            s.ranked = ranked
        }
    }

    // MARK: - What peers get

    /// `welcome.iceServers`: this node's own servers (without TURN when dial-back found it
    /// unreachable), then the nearest relays of the mesh with credentials for each, and the STUN
    /// URLs of those relays.
    func iceServers(own: [ICEServer], name: String, lifetime: Int) -> [ICEServer] {
        let (reachability, ranked) = state.withLock { ($0.reachability, $0.ranked) }
        var servers = own.filter { reachability != .unreachable || $0.username == nil }
        for relay in ranked.prefix(Self.relaysHandedOut) {
            guard let issued = credentials.issue(peer: name, relayKey: relay.record.key, lifetime: lifetime) else { continue }
            let urls = Self.atNode(relay.record.stun + relay.record.turn, of: relay.record)
            guard !urls.isEmpty else { continue }
            servers.append(ICEServer(urls: urls, username: issued.username, credential: issued.password))
        }
        return servers
    }

    /// The URLs of `urls` whose host is the host of the record's node address: the address
    /// this node proved the record's key at. A relay elsewhere is neither probed nor handed out.
    static func atNode(_ urls: [String], of record: NodeRecord) -> [String] {
        guard let colon = record.node.lastIndex(of: ":") else { return [] }
        let host = SignalingHub.unbracketed(String(record.node[..<colon]))
        guard let nodeIP = IPAddress(string: host) else { return [] }
        return urls.filter { ICEServerURI($0).flatMap { IPAddress(string: $0.host) } == nodeIP }
    }

    // MARK: - Status

    func status() async -> MeshStatus {
        let links = await hub.linkedNodes
        let entries = await hub.meshEntries
        let s = state.withLock { $0 }
        let own = ownRecordPreview(links: links, state: s)
        let now = Date().timeIntervalSince1970
        var nodes = [MeshStatus.Node(node: address, key: identity.publicKeyBase64, local: true, reachability: s.reachability.rawValue,
                                     relay: own.relay, load: own.load, capacity: own.capacity, version: Self.version, rttMs: 0,
                                     linked: false, links: links, stun: own.stun, turn: own.turn, expiresIn: nil, via: nil)]
        for entry in entries {
            let r = entry.record
            nodes.append(MeshStatus.Node(node: r.node, key: r.key, local: false, reachability: r.reachability.rawValue, relay: r.relay,
                                         load: r.load, capacity: r.capacity, version: r.version, rttMs: s.rtt[r.key] ?? nil,
                                         linked: links.contains(r.node), links: r.links, stun: r.stun, turn: r.turn,
                                         expiresIn: (r.expires - now).rounded(), via: entry.via))
        }
        var relays = own.relay ? [address] : []
        relays += s.ranked.prefix(Self.relaysHandedOut).map(\.record.node)
        return MeshStatus(node: address, key: identity.publicKeyBase64, reachability: s.reachability.rawValue, relay: own.relay,
                          checkedBy: s.checkedBy, dialbackMs: s.dialbackMs, nodes: nodes, links: links, relays: relays, time: now,
                          unproven: await hub.unprovenCount)
    }

    private func ownRecordPreview(links: [String], state s: State) -> NodeRecord {
        // Same content as the published record, without taking a sequence number.
        let saved = state.withLock { $0.seq }
        let record = ownRecord(links: links)
        state.withLock { $0.seq = saved }
        return record
    }
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}
