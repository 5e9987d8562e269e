import Foundation
import ICE
import Logging
import Media
import NIOCore
import Signaling
import Synchronization
import SDP
import DTLSSRTP

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

    var agent: ICEAgent?
    var transport: DTLSSRTPTransport?
    /// The engine, reachable from the transport's receive task without hopping onto the actor.
    let media = MediaSlot()
    var streams: [NegotiatedStream] = []
    var forward: AsyncStream<ICEAgentEvent>.Continuation?
    var forwarded: AsyncStream<ICEAgentEvent>?
    var localOffer: SessionDescription?
    var localAnswer: SessionDescription?
    var remoteCredentials: ICECredentials?
    var pendingCandidates: [CandidateInfo] = []
    var localGatheringDone = false
    public private(set) var state: CallState
    public private(set) var endReason: String?
    var failed = false
    var selectedPair: ICESelectedPair?
    var iceRestarts = 0
    var restartStarted: ContinuousClock.Instant?
    var lastRestart: ContinuousClock.Instant?
    var restartsSinceRecovery = 0
    var lastRestartDuration: Duration?
    var tasks: [Task<Void, Never>] = []
    var endWaiters: [CheckedContinuation<Void, Never>] = []
    var finalStatistics: MediaSessionStatistics?

    // Timings.
    let created = ContinuousClock.now
    var offerSent: ContinuousClock.Instant?
    var iceConnected: ContinuousClock.Instant?
    var mediaStarted: ContinuousClock.Instant?

    init(id: String, remote: String, kind: CallKind, isCaller: Bool, client: SignalingClient, options: CallOptions,
         iceServers: [ICEServer], logger: Logger) throws {
        self.id = id
        self.remote = remote
        self.kind = kind
        self.isCaller = isCaller
        self.client = client
        self.options = options
        self.iceServers = iceServers
        self.logger = logger
        certificate = try DTLSCertificate(commonName: "meshnode")
        state = isCaller ? .ringing : .connecting
        (states, stateSink) = AsyncStream.makeStream(of: CallState.self)
        stateSink.yield(state)
    }

    /// Waits until the call has ended.
    public func waitUntilEnded() async {
        if state == .ended { return }
        await withCheckedContinuation { endWaiters.append($0) }
    }

    /// Hangs up (tells the peer) and ends the call.
    public func hangup(reason: String = "hung up") async {
        guard state != .ended else { return }
        let type: CallSetupType = state == .ringing ? .cancel : .hangup
        try? await client.callSetup(type, to: remote, call: id, reason: reason)
        await end(reason)
    }

    /// The media statistics now (or at the end).
    public var statistics: MediaSessionStatistics? {
        finalStatistics ?? media.engine?.statistics
    }

    // MARK: - Signaling in

    /// Takes a verified call-setup message of this call.
    func handle(_ payload: CallPayload) async {
        guard state != .ended else { return }
        switch payload.type {
        case .accept where isCaller && state == .ringing:
            setState(.connecting)
            await run("offer") { try await self.sendOffer(restart: false) }
        case .reject, .busy, .cancel:
            await end("\(payload.type.rawValue) by \(remote)\(payload.reason.map { ": \($0)" } ?? "")", failed: true)
        case .hangup:
            await end("\(remote) hung up", failed: false)
        case .sdp:
            guard let text = payload.sdp else { return }
            if payload.sdpType == "offer" {
                await run("answer") { try await self.receiveOffer(text) }
            } else if payload.sdpType == "answer", isCaller {
                await run("answer") { try await self.receiveAnswer(text) }
            }
        case .candidate:
            guard let candidate = payload.candidate else { return }
            await addRemoteCandidate(candidate)
        default:
            break
        }
    }

    /// The node ended the ringing call.
    func timedOut() async {
        await end("no answer within the ring time", failed: true)
    }

    /// Runs a step; a failure ends the call with its reason and tells the peer, whose side of
    /// the call would otherwise stay up (and answer `busy` to the next call) until its deadline.
    func run(_ step: String, _ body: () async throws -> Void) async {
        do {
            try await body()
        } catch {
            logger.warning("call \(id): \(step) failed: \(error)")
            let reason = "\(step) failed: \(error)"
            if state != .ended { try? await client.callSetup(state == .ringing ? .cancel : .hangup, to: remote, call: id, reason: reason) }
            await end(reason, failed: true)
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

    // MARK: - ICE

    /// Creates the agent and the task that reads its events: candidates are trickled from here,
    /// everything is also forwarded to the DTLS transport once it exists.
    func makeAgent(role: ICEAgentConfiguration.Role) async throws -> ICEAgent {
        let configuration = ICEServerSettings.agentConfiguration(servers: iceServers, role: role, localAddresses: options.localAddresses,
                                                                 relayOnly: options.relayOnly)
        let agent = try await ICEAgent(configuration: configuration, logger: logger)
        self.agent = agent
        let (stream, continuation) = AsyncStream.makeStream(of: ICEAgentEvent.self)
        forward = continuation
        forwarded = stream
        tasks.append(Task { [weak self] in
            for await event in agent.events {
                continuation.yield(event)
                if case .dataReceived = event { continue }
                // A replaced agent's last events (its failure, its closing) are not this call's news.
                guard let self, await self.agent === agent else { continue }
                await self.iceEvent(event)
            }
            continuation.finish()
        })
        return agent
    }

    func iceEvent(_ event: ICEAgentEvent) async {
        switch event {
        case .localCandidate(let candidate):
            let info = CandidateInfo(candidate: candidate.sdp, sdpMid: streams.first?.mid ?? "0", sdpMLineIndex: 0)
            Task { try? await self.signal(.candidate, candidate: info, attempts: 5) }
        case .gatheringDone:
            localGatheringDone = true
            // An empty candidate is end-of-candidates, as browsers send it (RFC 8838 §8.2).
            Task { try? await self.signal(.candidate, candidate: CandidateInfo(candidate: "", sdpMid: "0", sdpMLineIndex: 0), attempts: 5) }
        case .stateChanged(let iceState):
            await iceStateChanged(iceState)
        case .selectedPair(let pair):
            selectedPair = pair
            logger.info("call \(id): selected pair \(pair)")
        case .dataReceived:
            break
        }
    }

    func iceStateChanged(_ iceState: ICEComponentState) async {
        logger.debug("call \(id): ICE \(iceState.rawValue)")
        switch iceState {
        case .connected, .ready:
            if iceConnected == nil { iceConnected = .now }
            if state == .reconnecting, let started = restartStarted {
                lastRestartDuration = .now - started
                restartStarted = nil
                restartsSinceRecovery = 0
                lastRestart = nil
                setState(.connected)
                media.engine?.requestKeyframe()
                logger.info("call \(id): ICE restart done in \(lastRestartDuration!)")
            }
        case .failed:
            if state == .connected || state == .reconnecting {
                await pathFailed()
            } else if state == .connecting, remoteCredentials != nil {
                await end("ICE found no working path to \(remote)", failed: true)
            }
        default:
            break
        }
    }

    /// The selected path died (consent lost or checks failed): the caller restarts ICE; the callee
    /// waits for the caller's new offer (one side restarts, so two restarts never cross).
    func pathFailed() async {
        if state == .connected { setState(.reconnecting) }
        guard isCaller else { return }
        await restartICE()
    }

    /// A first restart keeps the agent's local candidates (enough when a NAT lost its mapping or
    /// the peer moved). If it has not brought media back within `restartTimeout`, the next ones
    /// use a fresh agent that gathers anew — the old one's relay allocations may be gone (libnice
    /// releases TCP/TLS allocations it finds redundant while UDP works, so a firewall that starts
    /// dropping UDP mid-call leaves nothing to fall back to) — and the DTLS session moves to it.
    func restartICE(fresh: Bool = false) async {
        guard state == .reconnecting || state == .connected, agent != nil else { return }
        // The failure of a restart that is still young is its checks giving up; the retry timer
        // decides when to try again, so restarts never pile up.
        if let lastRestart, ContinuousClock.now - lastRestart < options.restartTimeout / 2 { return }
        let fresh = fresh || restartsSinceRecovery > 0
        if state == .connected { setState(.reconnecting) }
        restartStarted = restartStarted ?? .now
        lastRestart = .now
        restartsSinceRecovery += 1
        iceRestarts += 1
        logger.info("call \(id): ICE restart \(iceRestarts)\(fresh ? " with a fresh agent" : "")")
        await run("ICE restart") { try await self.sendOffer(restart: true, fresh: fresh) }
        // If this restart does not bring the path back, try again.
        let attempt = iceRestarts
        let timeout = options.restartTimeout
        tasks.append(Task { [weak self] in
            try? await Task.sleep(for: timeout)
            guard let self, await self.state == .reconnecting, await self.iceRestarts == attempt else { return }
            await self.restartICE(fresh: true)
        })
    }

    func addRemoteCandidate(_ info: CandidateInfo) async {
        guard let agent, remoteCredentials != nil else {
            pendingCandidates.append(info)
            return
        }
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

    func addPendingCandidates() async {
        let pending = pendingCandidates
        pendingCandidates = []
        for candidate in pending { await addRemoteCandidate(candidate) }
    }

    // MARK: - Ending

    func setState(_ new: CallState) {
        guard state != new, state != .ended else { return }
        state = new
        stateSink.yield(new)
    }

    /// Ends the call: stops media, sends close_notify, releases the agent. Idempotent.
    func end(_ reason: String, failed: Bool = false) async {
        guard state != .ended else { return }
        self.failed = failed || state == .connecting || state == .ringing
        endReason = reason
        state = .ended
        logger.info("call \(id) ended: \(reason)")
        if let engine = media.engine { finalStatistics = await engine.stop() }
        transport?.close()
        for task in tasks { task.cancel() }
        await agent?.close()
        forward?.finish()
        stateSink.yield(.ended)
        stateSink.finish()
        let waiters = endWaiters
        endWaiters = []
        for waiter in waiters { waiter.resume() }
    }
}

/// The call's media engine, readable from the transport's receive task without the actor.
final class MediaSlot: Sendable {
    private let slot = Mutex<MediaEngine?>(nil)
    var engine: MediaEngine? {
        get { slot.withLock { $0 } }
        set { slot.withLock { $0 = newValue } }
    }
}

extension Duration {
    /// The duration in milliseconds.
    var inMilliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}
