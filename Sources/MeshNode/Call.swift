import Foundation
import ICE
import Logging
import Media
import MeshCore
import NIOCore
import Signaling
import Synchronization
import SDP
import DTLSSRTP
import STUN

/// One call, like an RTCPeerConnection with its signaling (DESIGN.md "Data flow of one call"):
/// the caller sends `call`, and once the callee accepts, offers; the callee answers; candidates
/// trickle both ways through the nodes; libnice selects a pair; DTLS-SRTP runs over it with the
/// fingerprint from the signed SDP; then the ``MediaEngine`` sends and receives.
///
/// When the selected path dies (consent freshness fails, RFC 7675), the caller restarts ICE (RFC
/// 8445 §9) with a new offer; media resumes on the new pair with the same DTLS session. The
/// signaling connection is needed only for setup and restarts: a node restart does not stop media.
public actor Call {
    public nonisolated let id: String
    /// The other party's address (`name` or `name@host:port`).
    public nonisolated let remote: String
    public nonisolated let kind: CallKind
    public nonisolated let isCaller: Bool
    /// A participant's call to a room call's forwarder (docs/protocol.md "Room calls",
    /// *Forwarded mode*): the forwarder's offers add one receiving session per other participant.
    public nonisolated let forwarded: Bool
    /// The key the other party signs with: the caller's from its `call`, the callee's from its
    /// `accept`. Every later message of the call must carry it (``isFromOtherParty(_:)``).
    private(set) var remoteKey: String?
    /// State changes, in order; finishes when the call ends.
    public nonisolated let states: AsyncStream<CallState>

    let client: SignalingClient
    let options: CallOptions
    let iceServers: [ICEServer]
    let logger: Logger
    let certificate: DTLSCertificate
    let ssrcs = (audio: UInt32.random(in: 1...UInt32.max), video: UInt32.random(in: 1...UInt32.max), rtx: UInt32.random(in: 1...UInt32.max))
    let sessionID = UInt64.random(in: 1...0x3FFF_FFFF_FFFF_FFFF)
    let streamID = "meshnode-" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
    var sessionVersion = 1
    private let stateSink: AsyncStream<CallState>.Continuation

    /// The lifecycle and the ICE restarts; every change of phase goes through ``transition(_:)``.
    private(set) var machine: CallStateMachine
    /// The agent of the current path, with the feed that hands its datagrams to the DTLS transport.
    var ice: AgentLink?
    var transport: DTLSSRTPTransport?
    /// The engine, reachable from the transport's receive task without hopping onto the actor.
    let media = MediaSlot()
    /// In a forwarded call: the engines receiving each other participant.
    let forwardedReceivers = ForwardedReceivers()
    /// In a forwarded call: the screen share this side added (``addShare(_:)``).
    var share: Share?
    var streams: [NegotiatedStream] = []
    var localOffer: SessionDescription?
    /// The last answer this side made (the callee's to the first offer, either side's to a
    /// renegotiation): the model of its restart offers, which keep the session's sections.
    var localAnswer: SessionDescription?
    /// The `o=` session version of the last offer the peer sent that this side answered: an
    /// offer that is not newer is a repeat (RFC 3264 §8: a changed offer has a higher version).
    var remoteOfferVersion: UInt64?
    /// This side's DTLS role as `a=setup` says it, once negotiated: kept by every later offer
    /// and answer (RFC 8842 §5.5).
    var localSetup: SDPSetupRole?
    var selectedPair: ICESelectedPair?
    var tasks: [Task<Void, Never>] = []
    var endWaiters: [CheckedContinuation<Void, Never>] = []
    var finalStatistics: MediaSessionStatistics?
    /// Receive queue drops of agents a fresh-agent restart replaced (the current one's are live).
    var retiredQueueDrops = ReceiveQueueDrops()

    /// Where the call stands.
    public var state: CallState { machine.state }
    /// Why the call ended; nil while it runs.
    public var endReason: String? { machine.ending?.reason }
    var failed: Bool { machine.ending?.failed ?? false }
    var agent: ICEAgent? { ice?.agent }

    // Timings.
    let created = ContinuousClock.now
    var offerSent: ContinuousClock.Instant?
    var iceConnected: ContinuousClock.Instant?
    var mediaStarted: ContinuousClock.Instant?

    init(id: String, remote: String, remoteKey: String? = nil, kind: CallKind, isCaller: Bool, forwarded: Bool = false, client: SignalingClient,
         options: CallOptions, iceServers: [ICEServer], logger: Logger) throws {
        self.id = id
        self.forwarded = forwarded
        self.remote = remote
        self.remoteKey = remoteKey
        self.kind = kind
        self.isCaller = isCaller
        self.client = client
        self.options = options
        self.iceServers = iceServers
        self.logger = logger
        certificate = try DTLSCertificate(commonName: "meshnode")
        machine = CallStateMachine(isCaller: isCaller, peer: remote, restartTimeout: options.restartTimeout)
        (states, stateSink) = AsyncStream.makeStream(of: CallState.self)
        stateSink.yield(machine.state)
    }

    /// Waits until the call has ended.
    public func waitUntilEnded() async {
        if state == .ended { return }
        await withCheckedContinuation { endWaiters.append($0) }
    }

    /// Hangs up (tells the peer) and ends the call.
    public func hangup(reason: String = "hung up") async {
        await transition(.hangUp(reason: reason))
    }

    /// The media statistics now (or at the end).
    public var statistics: MediaSessionStatistics? {
        finalStatistics ?? media.engine?.statistics
    }

    // MARK: - Signaling in

    /// Whether a verified call-setup message comes from this call's other party: the same
    /// address (as this peer's client files it) and the key the call is bound to. Before the
    /// callee accepted, the caller knows only its address, and only an answer (accept, reject,
    /// busy) may come from it; the accept binds its key.
    func isFromOtherParty(_ payload: CallPayload) -> Bool {
        guard client.pinAddress(of: payload.from) == client.pinAddress(of: remote), let key = payload.key else { return false }
        if let remoteKey { return key == remoteKey }
        return isCaller && [.accept, .reject, .busy].contains(payload.type)
    }

    /// Takes a verified call-setup message of this call if it comes from the other party
    /// (``isFromOtherParty(_:)``); returns false, having done nothing, otherwise.
    @discardableResult
    func handle(_ payload: CallPayload) async -> Bool {
        guard isFromOtherParty(payload) else { return false }
        guard state != .ended else { return true }
        switch payload.type {
        case .accept:
            if remoteKey == nil { remoteKey = payload.key }
            await transition(.accepted)
        case .reject, .busy, .cancel:
            // The reason is the peer's text: it goes into logs and reports, so made safe here.
            await end("\(payload.type.rawValue) by \(remote)\(payload.reason.map { ": \(TerminalText.safe(String($0.prefix(200))))" } ?? "")", failed: true)
        case .hangup:
            await end("\(remote) hung up", failed: false)
        case .sdp:
            guard let text = payload.sdp else { return true }
            if payload.sdpType == "offer" {
                await run("answer") { try await self.receiveOffer(text) }
            } else if payload.sdpType == "answer" {
                for case .applyAnswer(let restart) in await transition(.answerReceived) {
                    await run("answer") { try await self.receiveAnswer(text, restart: restart) }
                }
            }
        case .candidate:
            guard let candidate = payload.candidate else { return true }
            await transition(.remoteCandidate(candidate))
        default:
            break
        }
        return true
    }

    /// This peer's signaling connection is back after it was lost: a restart sent meanwhile
    /// may be lost, so the caller restarts again now.
    func signalingReconnected() async {
        await transition(.signalingReconnected)
    }

    /// This host's network changed (``NetworkMonitor``). If an address the call's path used went
    /// away, the path is dead: restart now with a fresh agent instead of after 3 s of silence.
    /// If the path is down already and a new address or default route came, restart on it now.
    /// `awaitSignaling`: the signaling connection is being replaced, so the restart's offer
    /// waits for the new one.
    func networkChanged(_ change: NetworkChange, awaitSignaling: Bool) async {
        guard state == .connected || state == .reconnecting, let agent else { return }
        var pathLost = false
        if !change.removed.isEmpty {
            let hosts = Set(((try? await agent.localCandidates()) ?? []).filter { $0.kind == .host }.compactMap { IPAddress(string: $0.address) })
            if let local = selectedPair?.local, local.kind == .host || local.kind == .serverReflexive {
                // A host candidate is its own base; a server-reflexive one names its base in raddr.
                let base = local.kind == .host ? local.address : local.relatedAddress
                pathLost = base.flatMap { IPAddress(string: $0) }.map(change.removed.contains) ?? true
            } else {
                // A relayed or peer-reflexive local candidate does not say which local address
                // it leaves from: any of this agent's addresses gone counts.
                pathLost = !hosts.isDisjoint(with: change.removed)
            }
        }
        if pathLost {
            logger.info("call \(id): this host's network changed (\(change)); the path is gone, restarting ICE now")
            await transition(.localPathLost(awaitSignaling: awaitSignaling))
        } else if state == .reconnecting, !change.added.isEmpty || change.defaultRouteChanged {
            logger.info("call \(id): this host's network changed (\(change)) while the path is down; restarting ICE on it")
            await transition(.localNetworkAppeared(awaitSignaling: awaitSignaling))
        }
    }

    /// The node ended the ringing call. Once media flows the call no longer rings: a late or
    /// misdirected `timeout` does not end it.
    func timedOut() async {
        guard state == .ringing || state == .connecting else { return }
        await end("no answer within the ring time", failed: true)
    }

    /// Ends the call without telling the peer: stops media, sends close_notify, releases the
    /// agent. Idempotent.
    func end(_ reason: String, failed: Bool = false) async {
        await transition(.finished(reason: reason, failed: failed))
    }

    /// Runs a step; a failure ends the call with its reason and tells the peer, whose side of
    /// the call would otherwise stay up (and answer `busy` to the next call) until its deadline.
    func run(_ step: String, _ body: () async throws -> Void) async {
        do {
            try await body()
        } catch {
            logger.warning("call \(id): \(step) failed: \(error)")
            await transition(.stepFailed(reason: "\(step) failed: \(error)"))
        }
    }

    /// Sends a signed call-setup message, retrying while the node is unreachable (the client
    /// reconnects on its own) for as long as the call lasts, at most `attempts` seconds.
    func signal(_ type: CallSetupType, sdpType: String? = nil, sdp: String? = nil, candidate: CandidateInfo? = nil,
                attempts: Int = 30) async throws {
        var attempt = 0
        while true {
            do {
                try await client.callSetup(type, to: remote, call: id, sdpType: sdpType, sdp: sdp, candidate: candidate)
                return
            } catch let error as SignalingError where error.code == .disconnected || error.code == .timeout {
                attempt += 1
                guard attempt < attempts, state != .ended else { throw error }
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    // MARK: - The state machine

    /// Feeds an event to the state machine, publishes a changed state and performs the actions
    /// in order. Returns the actions, so that a caller that has the event's context (an offer's
    /// or answer's SDP) performs the ones that need it: ``CallStateMachine/Action/answerOffer(restart:)``
    /// and ``CallStateMachine/Action/applyAnswer(restart:)`` are left to it.
    @discardableResult
    func transition(_ event: CallStateMachine.Event) async -> [CallStateMachine.Action] {
        let before = machine.state
        let actions = machine.handle(event)
        if machine.state != before { stateSink.yield(machine.state) }
        // The path died: if this side's network changed, its signaling connection died with it,
        // and the restart's signaling must not go into it (SignalingClient.probe).
        if machine.state == .reconnecting, before == .connected { await client.probe() }
        for action in actions { await perform(action) }
        return actions
    }

    private func perform(_ action: CallStateMachine.Action) async {
        switch action {
        case .sendOffer:
            await run("offer") { try await self.sendOffer(restart: false) }
        case .restartICE(let fresh, let attempt):
            logger.info("call \(id): ICE restart \(attempt)\(fresh ? " with a fresh agent" : "")")
            await run("ICE restart") { try await self.sendOffer(restart: true, fresh: fresh) }
            armRestartTimer(attempt: attempt)
        case .awaitSignaling:
            // The signaling connection is being replaced; if it is not back soon, restart anyway
            // (the offer is retried while the node is unreachable).
            tasks.append(Task { [weak self] in
                try? await Task.sleep(for: .seconds(3))
                await self?.transition(.signalingWaitExpired)
            })
        case .addRemoteCandidate(let candidate):
            await addRemoteCandidate(candidate)
        case .startMedia:
            await startMedia()
        case .pathRestored(let duration):
            media.engine?.requestKeyframe()
            logger.info("call \(id): ICE restart done in \(duration)")
        case .notifyPeer(let type, let reason):
            try? await client.callSetup(type, to: remote, call: id, reason: reason)
        case .tearDown:
            await tearDown()
        case .answerOffer, .applyAnswer, .answerRenegotiation:
            break // performed by the caller of transition(_:), which has the SDP
        }
    }

    /// If the restart `attempt` has not brought the path back within the restart timeout, the
    /// state machine starts the next one (with a fresh agent).
    private func armRestartTimer(attempt: Int) {
        let timeout = options.restartTimeout
        tasks.append(Task { [weak self] in
            try? await Task.sleep(for: timeout)
            await self?.transition(.restartTimerFired(attempt: attempt))
        })
    }

    // MARK: - ICE

    /// Creates the agent and the task that reads its events: received datagrams go from here
    /// straight into the DTLS-SRTP transport once it exists (``ICEDatagramFeed``), on this task's
    /// thread; candidates and state changes go to the call.
    func makeAgent(role: ICEAgentConfiguration.Role) async throws -> AgentLink {
        let configuration = ICEServerSettings.agentConfiguration(servers: iceServers, role: role, localAddresses: options.localAddresses,
                                                                 relayOnly: options.relayOnly)
        let agent = try await ICEAgent(configuration: configuration, logger: logger)
        // Until the transport is attached (then the GLib thread hands datagrams to it directly),
        // the agent's own bounded stream is the one queue between libnice's thread and the
        // transport: a copy of it read by the transport's task cost a stream and a thread
        // wake-up per packet (docs/calls.md "How a received packet travels").
        let feed = ICEDatagramFeed()
        let link = AgentLink(agent: agent, feed: feed)
        if let old = ice { retiredQueueDrops = retiredQueueDrops + old.queueDrops }
        ice = link
        tasks.append(Task { [weak self] in
            for await event in agent.events {
                feed.feed(event)
                if case .dataReceived = event { continue }
                // A replaced agent's last events (its failure, its closing) are not this call's news.
                guard let self, await self.agent === agent else { continue }
                await self.iceEvent(event)
            }
            feed.finish()
        })
        return link
    }

    func iceEvent(_ event: ICEAgentEvent) async {
        switch event {
        case .localCandidate(let candidate):
            let info = CandidateInfo(candidate: candidate.sdp, sdpMid: streams.first?.mid ?? "0", sdpMLineIndex: 0)
            Task { try? await self.signal(.candidate, candidate: info, attempts: 5) }
        case .gatheringDone:
            ice?.gatheringDone = true
            // An empty candidate is end-of-candidates, as browsers send it (RFC 8838 §8.2), with
            // the mid of the bundle's first section like every candidate: a browser refuses a mid
            // its description lacks (webrtc-pc addIceCandidate), and an offerer names its own
            // mids (webrtcbin's are `audio0`, `video1`; WebRTCbinInteropTests found "0" sent).
            let end = CandidateInfo(candidate: "", sdpMid: streams.first?.mid ?? "0", sdpMLineIndex: 0)
            Task { try? await self.signal(.candidate, candidate: end, attempts: 5) }
        case .stateChanged(let iceState):
            logger.debug("call \(id): ICE \(iceState.rawValue)")
            switch iceState {
            case .connected, .ready:
                if iceConnected == nil { iceConnected = .now }
                await transition(.iceConnected)
            case .failed:
                await transition(.iceFailed)
            default:
                break
            }
        case .selectedPair(let pair):
            selectedPair = pair
            logger.info("call \(id): selected pair \(pair)")
        case .dataReceived:
            break
        }
    }

    /// Hands a trickled candidate (or end-of-candidates) to the agent.
    func addRemoteCandidate(_ info: CandidateInfo) async {
        guard let agent else { return }
        if info.candidate.isEmpty {
            try? await agent.endOfRemoteCandidates()
            return
        }
        do {
            try await agent.addRemoteCandidate(sdp: info.candidate)
        } catch {
            // mDNS names and candidates of other components cannot be used; the rest still can.
            logger.debug("call \(id): remote candidate skipped: \(error)")
        }
    }

    // MARK: - Ending

    /// Stops media, sends close_notify, releases the agent and wakes whoever waits for the end.
    private func tearDown() async {
        logger.info("call \(id) ended: \(endReason ?? "")")
        if let engine = media.engine { finalStatistics = await engine.stop() }
        if let share = media.share { _ = await share.stop() }
        await forwardedReceivers.stop()
        agent?.deliverDatagrams(to: nil)
        transport?.close()
        for task in tasks { task.cancel() }
        await agent?.close()
        ice?.feed.finish()
        stateSink.finish()
        let waiters = endWaiters
        endWaiters = []
        for waiter in waiters { waiter.resume() }
    }
}

/// A call's ICE agent, the feed that hands its datagrams to the DTLS transport, and whether it
/// has gathered all its candidates. A fresh-agent restart replaces all of it at once.
struct AgentLink {
    let agent: ICEAgent
    let feed: ICEDatagramFeed
    var gatheringDone = false

    /// What the agent's queue dropped so far, and the feed before the transport was attached.
    var queueDrops: ReceiveQueueDrops { ReceiveQueueDrops(ice: agent.events.droppedData, path: feed.droppedBeforeAttach) }
}

/// The call's media engine, readable from the thread that hands received packets over, without the actor.
final class MediaSlot: Sendable {
    private let slot = Mutex<MediaEngine?>(nil)
    private let shareSlot = Mutex<MediaEngine?>(nil)
    var engine: MediaEngine? {
        get { slot.withLock { $0 } }
        set { slot.withLock { $0 = newValue } }
    }
    /// The engine of a screen share added to a call to a forwarder (``Call/addShare(_:)``).
    var share: MediaEngine? {
        get { shareSlot.withLock { $0 } }
        set { shareSlot.withLock { $0 = newValue } }
    }
}

extension Duration {
    /// The duration in milliseconds.
    var inMilliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}
