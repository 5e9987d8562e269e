import ICE
import Signaling

/// The lifecycle of a ``Call`` and its ICE restarts, as a value. Every transition happens in
/// ``handle(_:at:)``, which switches over the phase and the event and returns what the call has
/// to do; events that do not fit the phase are ignored. The machine knows no agent, socket or
/// timer, so each rule of docs/calls.md ("How a call runs", "Failures and restarts") is tested
/// on its own; ``Call`` performs the actions and owns the resources.
struct CallStateMachine {
    /// Where the call stands; the associated values are the data that is valid only there.
    enum Phase: Equatable {
        /// Caller: the request went out; waiting for accept.
        case ringing
        /// Offer/answer, ICE and DTLS under way.
        case connecting(Setup)
        /// Media flows.
        case connected
        /// The path broke; ICE restarts are under way (RFC 8445 §9).
        case reconnecting(Recovery)
        /// Over; nothing moves the call out of here.
        case ended(Ending)
    }

    /// How far offer/answer has come while connecting.
    enum Setup: Equatable {
        /// Caller: the offer is going out; its answer is awaited.
        case offering
        /// Callee: waiting for the caller's offer.
        case awaitingOffer
        /// Offer and answer are exchanged: DTLS runs over ICE and media starts when its
        /// handshake completes.
        case negotiated
    }

    /// One outage and the restarts against it.
    struct Recovery: Equatable {
        /// When the first restart of this outage began: the caller's own, or on the callee the
        /// caller's first restart offer. Nil on the callee until that offer arrives.
        var since: ContinuousClock.Instant?
        /// When this side last began a restart: a failure soon after it is that restart's
        /// checks giving up, not a reason for another one.
        var lastAttempt: ContinuousClock.Instant?
        /// Restarts this side began in this outage; every one after the first uses a fresh agent.
        var attempts = 0
        /// This side's own network changed in this outage (an address the path used went away):
        /// it restarts itself, whichever role it has.
        var ownNetworkChanged = false
        /// This side's restart waits for its signaling connection, which is being replaced
        /// (its address went away too): an offer sent now would be lost.
        var awaitingSignaling = false
    }

    /// Why the call ended, and whether that is a failure (`ok: false` in the report).
    struct Ending: Equatable {
        var reason: String
        var failed: Bool
    }

    /// The peer's ICE description of the current generation.
    enum RemoteDescription: Equatable {
        /// Not known yet: before the offer (callee) or the answer (caller), and after this side
        /// renewed its credentials until the restart's answer. Trickled candidates wait here.
        case awaited(pending: [CandidateInfo])
        /// The peer's credentials are set on the agent: its candidates go straight to the agent.
        case applied(ICECredentials)
    }

    enum Event: Equatable {
        /// Caller: the callee accepted.
        case accepted
        /// An offer arrived; its ICE ufrag tells a restart (RFC 8445 §9) from a repeat.
        case offerReceived(usernameFragment: String)
        /// An answer arrived.
        case answerReceived
        /// The peer's ICE credentials of the current generation are set on the agent.
        case remoteDescriptionApplied(ICECredentials)
        /// This side's agent has new credentials (an ICE restart or a fresh agent): the peer's
        /// description of the new generation is awaited.
        case localCredentialsRenewed
        /// A trickled candidate arrived (an empty one is end-of-candidates, RFC 8838 §8.2).
        case remoteCandidate(CandidateInfo)
        /// The DTLS handshake completed.
        case transportConnected
        /// The media engine runs.
        case mediaStarted
        /// ICE has a working pair (again).
        case iceConnected
        /// ICE failed: the checks found no pair, or consent freshness expired (RFC 7675).
        case iceFailed
        /// Nothing arrived for the silence limit (docs/calls.md "Path loss").
        case mediaSilent
        /// The retry timer of restart number `attempt` fired.
        case restartTimerFired(attempt: Int)
        /// This side's signaling connection is back after it was lost (its network may have
        /// changed): signaling sent over the lost one may not have arrived.
        case signalingReconnected
        /// An address the call's path used went away from this host (rtnetlink, docs/calls.md
        /// "This side's network changed"); `awaitSignaling` when the signaling connection is
        /// being replaced too, so that the restart's offer waits for the new one.
        case localPathLost(awaitSignaling: Bool)
        /// A usable address or default route appeared on this host while the path is down.
        case localNetworkAppeared(awaitSignaling: Bool)
        /// The signaling connection did not come back in time after this side's network
        /// changed: restart anyway (the offer is retried while signaling is down).
        case signalingWaitExpired
        /// The setup deadline passed.
        case setupDeadlinePassed(reason: String)
        /// This side hangs up; the peer is told.
        case hangUp(reason: String)
        /// A step (the offer, the answer, a restart's signaling) failed: the call fails and the
        /// peer is told, whose side would otherwise stay up until its deadline.
        case stepFailed(reason: String)
        /// The call is over and there is nothing to tell the peer (it refused or hung up, DTLS
        /// failed, the ring timed out, the request could not be sent).
        case finished(reason: String, failed: Bool)
    }

    enum Action: Equatable {
        /// Caller: create the agent, send the first offer, then gather.
        case sendOffer
        /// Restart ICE with a new offer, with a fresh agent when `fresh`; when the offer is out,
        /// arm the retry timer for `attempt`. The caller's, or either side's after its own
        /// network changed.
        case restartICE(fresh: Bool, attempt: Int)
        /// Wait for the signaling connection (``Event/signalingReconnected``), at most a few
        /// seconds (``Event/signalingWaitExpired``), before restarting.
        case awaitSignaling
        /// Answer the offer: the first one creates the agent and starts DTLS, a restart offer
        /// restarts the agent and keeps the DTLS session.
        case answerOffer(restart: Bool)
        /// Answer an offer with the ICE credentials in force: no ICE restart, the DTLS session
        /// and media go on; a stream it adds is received from now on.
        case answerRenegotiation
        /// Caller: take the answer: the first one negotiates the streams and starts DTLS with
        /// the answer's fingerprint, a restart's answer only sets the new ICE credentials.
        case applyAnswer(restart: Bool)
        /// Hand a trickled candidate to the agent.
        case addRemoteCandidate(CandidateInfo)
        /// DTLS is up: start the media engine.
        case startMedia
        /// A restart brought the path back, `after` its beginning: ask for a keyframe.
        case pathRestored(after: Duration)
        /// Tell the peer the call is over.
        case notifyPeer(CallSetupType, reason: String)
        /// Stop media, close DTLS and the agent, wake whoever waits for the end.
        case tearDown
    }

    let isCaller: Bool
    /// The peer's address, for reasons.
    let peer: String
    /// How long a restart may take before the next one (with a fresh agent) is tried.
    let restartTimeout: Duration
    private(set) var phase: Phase
    private(set) var remote: RemoteDescription = .awaited(pending: [])
    /// ICE restarts over the whole call, begun by either side (the report's `iceRestarts`).
    private(set) var restarts = 0
    /// How long the last restart took to bring the path back.
    private(set) var lastRestartDuration: Duration?
    /// This side sent a restart offer whose answer has not come yet.
    private(set) var offerPending = false

    init(isCaller: Bool, peer: String, restartTimeout: Duration) {
        self.isCaller = isCaller
        self.peer = peer
        self.restartTimeout = restartTimeout
        phase = isCaller ? .ringing : .connecting(.awaitingOffer)
    }

    /// The state the call shows.
    var state: CallState {
        switch phase {
        case .ringing: .ringing
        case .connecting: .connecting
        case .connected: .connected
        case .reconnecting: .reconnecting
        case .ended: .ended
        }
    }

    /// Why and how the call ended; nil while it runs.
    var ending: Ending? {
        if case .ended(let ending) = phase { ending } else { nil }
    }

    /// Offer and answer are exchanged: a further offer or answer belongs to an ICE restart.
    private var isNegotiated: Bool {
        switch phase {
        case .connecting(.negotiated), .connected, .reconnecting: true
        case .ringing, .connecting, .ended: false
        }
    }

    /// Takes one event and returns what the call must do, in order.
    mutating func handle(_ event: Event, at now: ContinuousClock.Instant = .now) -> [Action] {
        switch (phase, event) {
        case (.ended, _):
            return []

        // Setup (docs/calls.md "How a call runs").
        case (.ringing, .accepted):
            // The caller offers only once accepted, so that candidates trickle to a peer that
            // takes them.
            phase = .connecting(.offering)
            return [.sendOffer]
        case (.connecting(.awaitingOffer), .offerReceived):
            phase = .connecting(.negotiated)
            return [.answerOffer(restart: false)]
        case (.connecting(.offering), .answerReceived):
            phase = .connecting(.negotiated)
            return [.applyAnswer(restart: false)]
        case (_, .offerReceived(let usernameFragment)):
            // RFC 8445 §9: new credentials in an established session are an ICE restart; the
            // same ones are a repeat.
            guard isNegotiated else { return [] }
            switch remote {
            case .applied(let credentials):
                // The same credentials: a renegotiation (RFC 8829 §5.2.2 subsequent offer, such
                // as the page adding its screen to an audio call) or a repeat of an offer; the
                // call answers the first and drops the second (by the `o=` version). Not while
                // this side's own offer is out.
                guard credentials.ufrag != usernameFragment else { return offerPending ? [] : [.answerRenegotiation] }
            case .awaited:
                // This side's own restart awaits its answer and the peer's offer crossed it
                // (glare, RFC 8829 §4.1.8.2's rollback): the callee gives way and answers the
                // caller's offer; the caller ignores the callee's, whose side answers its own.
                guard !isCaller, offerPending else { return [] }
            }
            offerPending = false
            peerRestarted(at: now)
            return [.answerOffer(restart: true)]
        case (_, .answerReceived):
            // Answers after the first finish restarts: any of the caller's (the latest one
            // wins), the callee's only while its own offer is out.
            guard isNegotiated, isCaller || offerPending else { return [] }
            offerPending = false
            return [.applyAnswer(restart: true)]
        case (.connecting(.negotiated), .transportConnected):
            return [.startMedia]
        case (.connecting(.negotiated), .mediaStarted):
            phase = .connected
            return []
        case (.connecting, .setupDeadlinePassed(let reason)):
            return end(reason, failed: true)

        // Trickle (RFC 8838): candidates wait for the description of their generation.
        case (_, .remoteCandidate(let candidate)):
            guard case .awaited(let pending) = remote else { return [.addRemoteCandidate(candidate)] }
            remote = .awaited(pending: pending + [candidate])
            return []
        case (_, .remoteDescriptionApplied(let credentials)):
            let pending = if case .awaited(let pending) = remote { pending } else { [CandidateInfo]() }
            remote = .applied(credentials)
            return pending.map(Action.addRemoteCandidate)
        case (_, .localCredentialsRenewed):
            if case .applied = remote { remote = .awaited(pending: []) }
            return []

        // Path loss and restarts (docs/calls.md "Failures and restarts").
        case (.connecting, .iceFailed):
            // Before the peer's credentials are set no check could run: nothing failed yet.
            guard case .applied = remote else { return [] }
            return end("ICE found no working path to \(peer)", failed: true)
        case (.connected, .iceFailed), (.reconnecting, .iceFailed), (.connected, .mediaSilent):
            return pathLost(at: now)
        case (.reconnecting(let recovery), .restartTimerFired(let attempt)):
            // Only the latest restart's timer counts, and only while the path is still down.
            guard attempt == restarts else { return [] }
            return restart(recovery, fresh: true, at: now)
        case (.connected, .localPathLost(let awaitSignaling)), (.reconnecting, .localPathLost(let awaitSignaling)):
            // This host lost the address the path used: no check on the old pair can succeed,
            // so restart now with a fresh agent (its sockets are bound to the old address),
            // without waiting for silence; the callee too, since the caller cannot know.
            var recovery = if case .reconnecting(let current) = phase { current } else { Recovery() }
            recovery.ownNetworkChanged = true
            return ownNetworkRestart(recovery, awaitSignaling: awaitSignaling, at: now)
        case (.reconnecting(let recovery), .localNetworkAppeared(let awaitSignaling)):
            // A new address while the path is down: gather on it now, not at the retry timer.
            guard isCaller || recovery.ownNetworkChanged else { return [] }
            return ownNetworkRestart(recovery, awaitSignaling: awaitSignaling, at: now)
        case (.reconnecting(var recovery), .signalingWaitExpired):
            guard recovery.awaitingSignaling else { return [] }
            recovery.awaitingSignaling = false
            recovery.lastAttempt = nil
            return restart(recovery, fresh: true, at: now)
        case (.reconnecting(var recovery), .signalingReconnected) where recovery.awaitingSignaling:
            recovery.awaitingSignaling = false
            recovery.lastAttempt = nil
            return restart(recovery, fresh: true, at: now)
        case (.reconnecting(var recovery), .signalingReconnected):
            // The restart offers sent into the lost connection are gone: the caller restarts
            // again at once, with a fresh agent that gathers on whatever network it has now,
            // instead of waiting for the retry timer.
            guard isCaller else { return [] }
            recovery.lastAttempt = nil
            return restart(recovery, fresh: true, at: now)
        case (.reconnecting(let recovery), .iceConnected):
            // The callee waits for the caller's restart before it counts the path as back.
            guard let since = recovery.since else { return [] }
            lastRestartDuration = now - since
            phase = .connected
            return [.pathRestored(after: now - since)]

        // Ending.
        case (_, .hangUp(let reason)):
            return [.notifyPeer(phase == .ringing ? .cancel : .hangup, reason: reason)] + end(reason, failed: false)
        case (_, .stepFailed(let reason)):
            return [.notifyPeer(phase == .ringing ? .cancel : .hangup, reason: reason)] + end(reason, failed: true)
        case (_, .finished(let reason, let failed)):
            return end(reason, failed: failed)

        default:
            return []
        }
    }

    /// The path died: the call reconnects, and the caller restarts ICE. Only the caller starts
    /// restarts, so that two restarts never cross; the callee answers the caller's offer.
    private mutating func pathLost(at now: ContinuousClock.Instant) -> [Action] {
        let recovery = if case .reconnecting(let current) = phase { current } else { Recovery() }
        phase = .reconnecting(recovery)
        guard isCaller else { return [] }
        return restart(recovery, fresh: false, at: now)
    }

    /// This side's network changed: restart at once with a fresh agent, or once the signaling
    /// connection that is being replaced is back.
    private mutating func ownNetworkRestart(_ recovery: Recovery, awaitSignaling: Bool, at now: ContinuousClock.Instant) -> [Action] {
        var recovery = recovery
        recovery.awaitingSignaling = awaitSignaling
        guard !awaitSignaling else {
            phase = .reconnecting(recovery)
            return [.awaitSignaling]
        }
        recovery.lastAttempt = nil
        return restart(recovery, fresh: true, at: now)
    }

    /// A restart this side begins. The first of an outage keeps the agent's local candidates (enough
    /// when a NAT lost its mapping or the peer moved); later ones use a fresh agent that gathers
    /// anew, because the old one's relay allocations may have died with the path.
    private mutating func restart(_ recovery: Recovery, fresh: Bool, at now: ContinuousClock.Instant) -> [Action] {
        // A failure while the last restart is young is its checks giving up; the retry timer
        // decides when to try again, so restarts never pile up.
        if let last = recovery.lastAttempt, now - last < restartTimeout / 2 { return [] }
        var recovery = recovery
        let fresh = fresh || recovery.attempts > 0
        recovery.since = recovery.since ?? now
        recovery.lastAttempt = now
        recovery.attempts += 1
        restarts += 1
        offerPending = true
        phase = .reconnecting(recovery)
        return [.restartICE(fresh: fresh, attempt: restarts)]
    }

    /// The peer restarted ICE (its offer carries new credentials).
    private mutating func peerRestarted(at now: ContinuousClock.Instant) {
        restarts += 1
        switch phase {
        case .connected:
            phase = .reconnecting(Recovery(since: now))
        case .reconnecting(var recovery):
            recovery.since = recovery.since ?? now
            phase = .reconnecting(recovery)
        case .ringing, .connecting, .ended:
            break // before media there is no path to recover
        }
    }

    /// A call that never got media failed, whoever ended it.
    private mutating func end(_ reason: String, failed: Bool) -> [Action] {
        let beforeMedia = switch phase {
        case .ringing, .connecting: true
        case .connected, .reconnecting, .ended: false
        }
        phase = .ended(Ending(reason: reason, failed: failed || beforeMedia))
        return [.tearDown]
    }
}
