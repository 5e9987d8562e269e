import ICE
import Signaling
import Testing
@testable import MeshNode

/// The rules of docs/calls.md ("How a call runs", "Failures and restarts") on the call's state
/// machine alone: no agent, no socket, a clock the test moves.
@Suite struct CallStateMachineTests {
    let start = ContinuousClock.now
    let peerCredentials = ICECredentials(ufrag: "peer", password: "peer-password-0123456789")

    /// A caller whose call is accepted, answered and has media.
    func connectedCaller() -> CallStateMachine {
        var machine = CallStateMachine(isCaller: true, peer: "bob", restartTimeout: .seconds(8))
        _ = machine.handle(.accepted, at: start)
        _ = machine.handle(.answerReceived, at: start)
        _ = machine.handle(.remoteDescriptionApplied(peerCredentials), at: start)
        _ = machine.handle(.transportConnected, at: start)
        _ = machine.handle(.mediaStarted, at: start)
        return machine
    }

    /// A callee that answered the caller's offer and has media.
    func connectedCallee() -> CallStateMachine {
        var machine = CallStateMachine(isCaller: false, peer: "alice", restartTimeout: .seconds(8))
        _ = machine.handle(.offerReceived(usernameFragment: "peer"), at: start)
        _ = machine.handle(.remoteDescriptionApplied(peerCredentials), at: start)
        _ = machine.handle(.transportConnected, at: start)
        _ = machine.handle(.mediaStarted, at: start)
        return machine
    }

    func candidate(_ n: Int) -> CandidateInfo {
        CandidateInfo(candidate: "candidate:\(n) 1 udp 2122260223 192.0.2.\(n) 5000 typ host", sdpMid: "0", sdpMLineIndex: 0)
    }

    // MARK: Setup

    @Test("the caller offers only after the accept, and only once")
    func offerAfterAccept() {
        var machine = CallStateMachine(isCaller: true, peer: "bob", restartTimeout: .seconds(8))
        #expect(machine.state == .ringing)
        #expect(machine.handle(.answerReceived).isEmpty, "an answer before any offer")
        #expect(machine.handle(.transportConnected).isEmpty)
        #expect(machine.handle(.accepted) == [.sendOffer])
        #expect(machine.phase == .connecting(.offering))
        #expect(machine.handle(.accepted).isEmpty, "a repeated accept")
    }

    @Test("the callee never offers; it answers the first offer once and ignores answers")
    func calleeAnswers() {
        var machine = CallStateMachine(isCaller: false, peer: "alice", restartTimeout: .seconds(8))
        #expect(machine.state == .connecting)
        #expect(machine.handle(.accepted).isEmpty)
        #expect(machine.handle(.answerReceived).isEmpty)
        #expect(machine.handle(.offerReceived(usernameFragment: "peer")) == [.answerOffer(restart: false)])
        #expect(machine.phase == .connecting(.negotiated))
        #expect(machine.handle(.offerReceived(usernameFragment: "peer")).isEmpty, "the same offer again while it is being answered")
    }

    @Test("the first answer starts DTLS; media starts when the handshake completes")
    func firstAnswerStartsTransport() {
        var machine = CallStateMachine(isCaller: true, peer: "bob", restartTimeout: .seconds(8))
        _ = machine.handle(.accepted)
        #expect(machine.handle(.mediaStarted).isEmpty, "no media before the answer")
        #expect(machine.state == .connecting)
        #expect(machine.handle(.answerReceived) == [.applyAnswer(restart: false)])
        #expect(machine.handle(.transportConnected) == [.startMedia])
        _ = machine.handle(.mediaStarted)
        #expect(machine.state == .connected)
        #expect(machine.handle(.transportConnected).isEmpty, "the engine starts once")
    }

    @Test("trickled candidates wait for the peer's description, then go straight to the agent")
    func trickle() {
        var machine = CallStateMachine(isCaller: false, peer: "alice", restartTimeout: .seconds(8))
        // Candidates that overtake the offer.
        #expect(machine.handle(.remoteCandidate(candidate(1))).isEmpty)
        #expect(machine.handle(.remoteCandidate(candidate(2))).isEmpty)
        _ = machine.handle(.offerReceived(usernameFragment: "peer"))
        #expect(machine.handle(.remoteCandidate(candidate(3))).isEmpty, "the offer is known, its credentials are not set yet")
        #expect(machine.handle(.remoteDescriptionApplied(peerCredentials)) == [1, 2, 3].map { .addRemoteCandidate(candidate($0)) })
        #expect(machine.handle(.remoteCandidate(candidate(4))) == [.addRemoteCandidate(candidate(4))])
        let endOfCandidates = CandidateInfo(candidate: "", sdpMid: "0", sdpMLineIndex: 0)
        #expect(machine.handle(.remoteCandidate(endOfCandidates)) == [.addRemoteCandidate(endOfCandidates)])
    }

    @Test("after this side renews its credentials, candidates wait for the restart's answer")
    func trickleAcrossRestart() {
        var machine = connectedCaller()
        _ = machine.handle(.localCredentialsRenewed)
        #expect(machine.remote == .awaited(pending: []))
        #expect(machine.handle(.remoteCandidate(candidate(5))).isEmpty)
        let renewed = ICECredentials(ufrag: "peer2", password: "peer-password-9876543210")
        #expect(machine.handle(.remoteDescriptionApplied(renewed)) == [.addRemoteCandidate(candidate(5))])
        #expect(machine.remote == .applied(renewed))
    }

    @Test("an ICE failure before the peer's credentials are set is not a failure; after, it ends the call")
    func iceFailureWhileConnecting() {
        var machine = CallStateMachine(isCaller: true, peer: "bob", restartTimeout: .seconds(8))
        _ = machine.handle(.accepted)
        #expect(machine.handle(.iceFailed).isEmpty)
        _ = machine.handle(.answerReceived)
        _ = machine.handle(.remoteDescriptionApplied(peerCredentials))
        #expect(machine.handle(.iceFailed) == [.tearDown])
        #expect(machine.ending == .init(reason: "ICE found no working path to bob", failed: true))
    }

    @Test("the setup deadline ends a call that is still connecting, not one with media")
    func setupDeadline() {
        var connecting = CallStateMachine(isCaller: false, peer: "alice", restartTimeout: .seconds(8))
        #expect(connecting.handle(.setupDeadlinePassed(reason: "no media path within 30 s")) == [.tearDown])
        #expect(connecting.ending?.failed == true)
        var connected = connectedCallee()
        #expect(connected.handle(.setupDeadlinePassed(reason: "no media path within 30 s")).isEmpty)
        #expect(connected.state == .connected)
    }

    // MARK: Restarts

    @Test("3 s of silence: the caller reconnects and restarts ICE, keeping its agent")
    func callerRestartsOnSilence() {
        var machine = connectedCaller()
        let lost = start + .seconds(20)
        #expect(machine.handle(.mediaSilent, at: lost) == [.restartICE(fresh: false, attempt: 1)])
        #expect(machine.phase == .reconnecting(.init(since: lost, lastAttempt: lost, attempts: 1)))
        #expect(machine.restarts == 1)
    }

    @Test("the callee notices the silence too but waits for the caller's restart offer")
    func calleeWaitsForTheCaller() {
        var machine = connectedCallee()
        #expect(machine.handle(.mediaSilent, at: start + .seconds(20)).isEmpty)
        #expect(machine.state == .reconnecting)
        #expect(machine.handle(.iceFailed, at: start + .seconds(21)).isEmpty)
        #expect(machine.handle(.iceConnected, at: start + .seconds(22)).isEmpty, "no restart yet: still reconnecting")
        #expect(machine.state == .reconnecting)
        let offer = start + .seconds(23)
        #expect(machine.handle(.offerReceived(usernameFragment: "peer-restart"), at: offer) == [.answerOffer(restart: true)])
        #expect(machine.restarts == 1)
        #expect(machine.handle(.iceConnected, at: offer + .seconds(1)) == [.pathRestored(after: .seconds(1))])
        #expect(machine.state == .connected)
    }

    @Test("an offer with the current credentials is a renegotiation (or a repeat, which the call drops by version), not a restart")
    func sameCredentialsAreNoRestart() {
        var machine = connectedCallee()
        #expect(machine.handle(.offerReceived(usernameFragment: "peer")) == [.answerRenegotiation])
        #expect(machine.state == .connected)
        #expect(machine.restarts == 0)
        var caller = connectedCaller()
        #expect(caller.handle(.offerReceived(usernameFragment: "peer")) == [.answerRenegotiation], "the page, as callee, adds its screen")
        // Not while this side's own restart offer is out: its credentials are being replaced.
        _ = caller.handle(.mediaSilent, at: start + .seconds(20))
        _ = caller.handle(.localCredentialsRenewed, at: start + .seconds(20))
        #expect(caller.handle(.offerReceived(usernameFragment: "peer")).isEmpty)
    }

    @Test("a restart that has not helped within 8 s is followed by one with a fresh agent")
    func freshAgentAfterFailedRestart() {
        var machine = connectedCaller()
        let lost = start + .seconds(20)
        _ = machine.handle(.mediaSilent, at: lost)
        #expect(machine.handle(.restartTimerFired(attempt: 1), at: lost + .seconds(8)) == [.restartICE(fresh: true, attempt: 2)])
        #expect(machine.handle(.restartTimerFired(attempt: 2), at: lost + .seconds(16)) == [.restartICE(fresh: true, attempt: 3)])
        #expect(machine.handle(.iceConnected, at: lost + .seconds(18)) == [.pathRestored(after: .seconds(18))])
        #expect(machine.lastRestartDuration == .seconds(18))
        #expect(machine.restarts == 3)
    }

    /// A phone moving from Wi-Fi to mobile data: the restart offer went into the signaling
    /// connection that died with the old network. Once signaling is back, the caller restarts at
    /// once with a fresh agent (new network), not after the 8 s timer; the callee waits for it.
    @Test("signaling back while reconnecting: the caller restarts at once with a fresh agent")
    func restartAgainWhenSignalingIsBack() {
        var caller = connectedCaller()
        let lost = start + .seconds(20)
        #expect(caller.handle(.mediaSilent, at: lost) == [.restartICE(fresh: false, attempt: 1)])
        #expect(caller.handle(.signalingReconnected, at: lost + .seconds(2)) == [.restartICE(fresh: true, attempt: 2)])
        #expect(caller.handle(.restartTimerFired(attempt: 1), at: lost + .seconds(8)).isEmpty, "the first restart's timer is stale")
        #expect(caller.handle(.iceConnected, at: lost + .seconds(3)) == [.pathRestored(after: .seconds(3))])
        // Connected, a reconnect of signaling is no news.
        #expect(caller.handle(.signalingReconnected, at: lost + .seconds(30)).isEmpty)
        var callee = connectedCallee()
        _ = callee.handle(.mediaSilent, at: lost)
        #expect(callee.handle(.signalingReconnected, at: lost + .seconds(2)).isEmpty)
    }

    @Test("restarts never pile up: a failure within 4 s of the last restart waits for the timer")
    func restartsDoNotPileUp() {
        var machine = connectedCaller()
        let lost = start + .seconds(20)
        _ = machine.handle(.mediaSilent, at: lost)
        #expect(machine.handle(.iceFailed, at: lost + .seconds(1)).isEmpty, "the restart's own checks giving up")
        #expect(machine.handle(.mediaSilent, at: lost + .seconds(3)).isEmpty, "silence while reconnecting is no news")
        #expect(machine.restarts == 1)
        // Past half the restart timeout, a failure starts the next restart, with a fresh agent.
        #expect(machine.handle(.iceFailed, at: lost + .seconds(5)) == [.restartICE(fresh: true, attempt: 2)])
        // The first restart's timer is stale now; only the latest one counts.
        #expect(machine.handle(.restartTimerFired(attempt: 1), at: lost + .seconds(8)).isEmpty)
        #expect(machine.restarts == 2)
    }

    @Test("a retry timer that fires after the path came back does nothing; the next outage starts afresh")
    func timerAfterRecovery() {
        var machine = connectedCaller()
        let lost = start + .seconds(20)
        _ = machine.handle(.mediaSilent, at: lost)
        _ = machine.handle(.iceConnected, at: lost + .seconds(2))
        #expect(machine.state == .connected)
        #expect(machine.handle(.restartTimerFired(attempt: 1), at: lost + .seconds(8)).isEmpty)
        #expect(machine.state == .connected)
        // A new outage begins with a restart that keeps the agent, not with a fresh one.
        #expect(machine.handle(.iceFailed, at: lost + .seconds(30)) == [.restartICE(fresh: false, attempt: 2)])
    }

    @Test("answers after the first finish restarts without a new DTLS session")
    func restartAnswer() {
        var machine = connectedCaller()
        _ = machine.handle(.mediaSilent, at: start + .seconds(20))
        #expect(machine.handle(.answerReceived) == [.applyAnswer(restart: true)])
        #expect(machine.handle(.transportConnected).isEmpty, "DTLS is not started again")
    }

    @Test("a peer's offer is ignored while this side's own restart awaits its answer")
    func crossingRestartIgnored() {
        var machine = connectedCaller()
        _ = machine.handle(.mediaSilent, at: start + .seconds(20))
        _ = machine.handle(.localCredentialsRenewed)
        #expect(machine.handle(.offerReceived(usernameFragment: "other")).isEmpty)
    }

    // MARK: Ending

    @Test("hanging up tells the peer: cancel while ringing, hangup after")
    func hangup() {
        var ringing = CallStateMachine(isCaller: true, peer: "bob", restartTimeout: .seconds(8))
        #expect(ringing.handle(.hangUp(reason: "hung up")) == [.notifyPeer(.cancel, reason: "hung up"), .tearDown])
        #expect(ringing.ending == .init(reason: "hung up", failed: true), "a call without media failed")
        var connected = connectedCaller()
        #expect(connected.handle(.hangUp(reason: "hung up")) == [.notifyPeer(.hangup, reason: "hung up"), .tearDown])
        #expect(connected.ending == .init(reason: "hung up", failed: false))
    }

    @Test("a failed step tells the peer and fails the call")
    func stepFailure() {
        var machine = connectedCaller()
        _ = machine.handle(.mediaSilent, at: start + .seconds(20))
        #expect(machine.handle(.stepFailed(reason: "ICE restart failed: disconnected")) ==
            [.notifyPeer(.hangup, reason: "ICE restart failed: disconnected"), .tearDown])
        #expect(machine.ending == .init(reason: "ICE restart failed: disconnected", failed: true))
    }

    @Test("the peer hanging up ends a connected call as ok, a connecting one as failed")
    func peerHangsUp() {
        var connected = connectedCallee()
        #expect(connected.handle(.finished(reason: "alice hung up", failed: false)) == [.tearDown])
        #expect(connected.ending?.failed == false)
        var connecting = CallStateMachine(isCaller: false, peer: "alice", restartTimeout: .seconds(8))
        _ = connecting.handle(.finished(reason: "alice hung up", failed: false))
        #expect(connecting.ending?.failed == true)
    }

    @Test("an ended call ignores every later event and keeps its first reason")
    func endedIsFinal() {
        var machine = connectedCaller()
        _ = machine.handle(.finished(reason: "bob hung up", failed: false))
        let events: [CallStateMachine.Event] = [
            .accepted, .offerReceived(usernameFragment: "x"), .answerReceived, .remoteCandidate(candidate(1)),
            .remoteDescriptionApplied(peerCredentials), .transportConnected, .mediaStarted, .iceConnected, .iceFailed,
            .mediaSilent, .restartTimerFired(attempt: 1), .setupDeadlinePassed(reason: "late"), .hangUp(reason: "again"),
            .stepFailed(reason: "late failure"), .finished(reason: "other", failed: true),
        ]
        for event in events {
            #expect(machine.handle(event, at: start + .seconds(60)).isEmpty, "\(event)")
        }
        #expect(machine.ending == .init(reason: "bob hung up", failed: false))
        #expect(machine.state == .ended)
    }

    // MARK: This side's network changed (docs/calls.md)

    @Test("an address the path used went away: the caller restarts with a fresh agent at once, not after 3 s of silence")
    func callerLosesItsAddress() {
        var machine = connectedCaller()
        let moved = start + .seconds(20)
        #expect(machine.handle(.localPathLost(awaitSignaling: false), at: moved) == [.restartICE(fresh: true, attempt: 1)])
        #expect(machine.state == .reconnecting)
        #expect(machine.handle(.mediaSilent, at: moved + .seconds(3)).isEmpty, "the silence that follows is no news")
        #expect(machine.handle(.iceConnected, at: moved + .seconds(1)) == [.pathRestored(after: .seconds(1))])
    }

    @Test("with the signaling connection being replaced too, the restart waits for it, then goes once")
    func restartWaitsForSignaling() {
        var machine = connectedCaller()
        let moved = start + .seconds(20)
        #expect(machine.handle(.localPathLost(awaitSignaling: true), at: moved) == [.awaitSignaling])
        #expect(machine.restarts == 0)
        #expect(machine.handle(.signalingReconnected, at: moved + .milliseconds(300)) == [.restartICE(fresh: true, attempt: 1)])
        #expect(machine.handle(.signalingWaitExpired, at: moved + .seconds(3)).isEmpty, "the fallback is stale once signaling is back")
        #expect(machine.restarts == 1)
    }

    @Test("signaling that does not come back in time: the restart goes anyway")
    func signalingWaitExpires() {
        var machine = connectedCallee()
        let moved = start + .seconds(20)
        #expect(machine.handle(.localPathLost(awaitSignaling: true), at: moved) == [.awaitSignaling])
        #expect(machine.handle(.signalingWaitExpired, at: moved + .seconds(3)) == [.restartICE(fresh: true, attempt: 1)])
    }

    @Test("a callee whose own address went away restarts itself; the caller's answer finishes it")
    func calleeRestartsAfterItsOwnMove() {
        var machine = connectedCallee()
        let moved = start + .seconds(20)
        #expect(machine.handle(.answerReceived, at: moved).isEmpty, "no answer without an offer of its own")
        #expect(machine.handle(.localPathLost(awaitSignaling: false), at: moved) == [.restartICE(fresh: true, attempt: 1)])
        #expect(machine.offerPending)
        _ = machine.handle(.localCredentialsRenewed, at: moved)
        #expect(machine.handle(.answerReceived, at: moved + .milliseconds(100)) == [.applyAnswer(restart: true)])
        #expect(!machine.offerPending)
        #expect(machine.handle(.answerReceived, at: moved + .milliseconds(200)).isEmpty, "a second answer to one offer")
        _ = machine.handle(.remoteDescriptionApplied(ICECredentials(ufrag: "peer2", password: "peer-password-0123456789")))
        #expect(machine.handle(.iceConnected, at: moved + .seconds(1)) == [.pathRestored(after: .seconds(1))])
        // Its retry timer, like the caller's, tries again with a fresh agent if the path stays down.
        _ = machine.handle(.localPathLost(awaitSignaling: false), at: moved + .seconds(30))
        #expect(machine.handle(.restartTimerFired(attempt: 2), at: moved + .seconds(38)) == [.restartICE(fresh: true, attempt: 3)])
    }

    @Test("glare: the callee's and the caller's restart offers cross; the callee gives way, the caller ignores the callee's")
    func restartGlare() {
        let moved = start + .seconds(20)
        var callee = connectedCallee()
        _ = callee.handle(.localPathLost(awaitSignaling: false), at: moved)
        _ = callee.handle(.localCredentialsRenewed, at: moved)
        #expect(callee.handle(.offerReceived(usernameFragment: "caller-restart"), at: moved + .milliseconds(50)) == [.answerOffer(restart: true)])
        #expect(!callee.offerPending)
        #expect(callee.handle(.answerReceived, at: moved + .milliseconds(60)).isEmpty, "the answer to its withdrawn offer")

        var caller = connectedCaller()
        _ = caller.handle(.mediaSilent, at: moved)
        _ = caller.handle(.localCredentialsRenewed, at: moved)
        #expect(caller.handle(.offerReceived(usernameFragment: "callee-restart"), at: moved + .milliseconds(50)).isEmpty)
        // Not restarting itself, the caller answers a callee's restart like any restart offer.
        var quiet = connectedCaller()
        #expect(quiet.handle(.offerReceived(usernameFragment: "callee-restart"), at: moved) == [.answerOffer(restart: true)])
    }

    @Test("a new address while the path is down restarts at once; with a path that works, nothing happens")
    func newAddressWhileDown() {
        var machine = connectedCaller()
        #expect(machine.handle(.localNetworkAppeared(awaitSignaling: false), at: start + .seconds(10)).isEmpty, "connected: no news")
        let lost = start + .seconds(20)
        _ = machine.handle(.mediaSilent, at: lost)
        #expect(machine.handle(.localNetworkAppeared(awaitSignaling: false), at: lost + .seconds(1)) == [.restartICE(fresh: true, attempt: 2)])
        // A callee that did not move leaves restarts to the caller.
        var callee = connectedCallee()
        _ = callee.handle(.mediaSilent, at: lost)
        #expect(callee.handle(.localNetworkAppeared(awaitSignaling: false), at: lost + .seconds(1)).isEmpty)
    }
}
