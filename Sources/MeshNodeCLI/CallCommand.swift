import ArgumentParser
import Foundation
import Media
import MeshNode
import Signaling

/// `meshnode call`: places a call, runs it for a while, hangs up and reports.
struct CallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call",
        abstract: "Call a peer (audio, video or desktop), run the call for --duration seconds, hang up and report.",
        discussion: """
        ADDR is a name at your node or name@host:port at a linked node. Exits 0 only if media \
        flowed both ways. With --json it prints one JSON summary (docs/calls.md): selected \
        candidate pair, relay if any, setup time, packets and frames per stream, loss, RTT. On a \
        terminal a status line shows state, path, RTT, bitrate, loss and frames.
        """
    )

    @Argument(help: "Whom to call: NAME or NAME@HOST:PORT, or #ROOM for a room call (docs/rooms.md).")
    var address: String
    @OptionGroup var peer: PeerOptions
    @OptionGroup var media: MediaOptions
    @Flag(help: "Audio only (unless --video or --desktop).")
    var audio = false
    @Flag(help: "Audio and video (the default).")
    var video = false
    @Flag(help: "Share this X display's desktop (VP8 screen content).")
    var desktop = false
    @Option(help: "Seconds the call runs once media flows.")
    var duration: Double = 10
    @Flag(help: "Print one JSON summary instead of text.")
    var json = false
    @Option(name: .customLong("until-decoded"), help: ArgumentHelp(
        "A room call: leave once the call to its forwarder decoded N frames of each of --senders other participants (every stream they send), or --duration after the last call connected at the latest.",
        valueName: "N"))
    var untilDecoded: Int?
    @Option(help: "With --until-decoded: how many other participants' frames to wait for.")
    var senders: Int?
    @Option(help: ArgumentHelp(
        "A room call: once it runs through the forwarder, also share SOURCE (x11[:DISPLAY] or pattern[:WxH[@FPS]]) as a stream of its own, --share-after seconds after the call to the forwarder connected.",
        valueName: "SOURCE"))
    var share: String?
    @Option(name: .customLong("share-after"), help: "Seconds after the call to the forwarder connected when --share starts.")
    var shareAfter: Double = 2

    var kind: CallKind { desktop ? .desktop : (audio && !video ? .audio : .video) }

    func validate() throws {
        guard duration > 0, duration <= 86_400 else { throw ValidationError("--duration is 0-86400 seconds") }
        guard (untilDecoded == nil) == (senders == nil) else { throw ValidationError("--until-decoded and --senders go together") }
        if share != nil {
            guard address.hasPrefix("#") else { throw ValidationError("--share is for a room call (#ROOM): it adds a stream to the call to its forwarder") }
            guard (0...3_600).contains(shareAfter) else { throw ValidationError("--share-after is 0-3600 seconds") }
            _ = try shareSource()
        }
        if let untilDecoded, let senders {
            guard address.hasPrefix("#") else { throw ValidationError("--until-decoded is for a room call (#ROOM)") }
            guard (1...100_000).contains(untilDecoded) else { throw ValidationError("--until-decoded is 1-100000 frames") }
            guard (1...ForwardedDecodeGoal.maxSenders).contains(senders) else {
                throw ValidationError("--senders is 1-\(ForwardedDecodeGoal.maxSenders) (a forwarded call's other participants)")
            }
        }
    }

    /// What `--share` sends: a video source as `--source` takes it.
    func shareSource() throws -> VideoSourceSpec? {
        guard let share else { return nil }
        guard share.hasPrefix("x11") || share.hasPrefix("pattern") else { throw ValidationError("--share takes x11[:DISPLAY] or pattern[:WxH[@FPS]], not '\(share)'") }
        return try MediaOptions.parse(["--source", share]).callOptions().videoSource
    }

    func run() async throws {
        let runner = CallRunner(peer: peer, media: media, json: json)
        if address.hasPrefix("#") {
            let goal = untilDecoded.flatMap { frames in senders.map { ForwardedDecodeGoal(frames: frames, senders: $0) } }
            let share = try shareSource().map { (source: $0, after: shareAfter) }
            throw ExitCode(try await runner.runRoomCall(address, kind: kind, duration: duration, until: goal, share: share) ? 0 : 1)
        }
        let report = try await runner.run(address: address, kind: kind, duration: duration)
        throw ExitCode(report.ok ? 0 : 1)
    }
}

/// `meshnode share`: a desktop call.
struct Share: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Share this X display's desktop with a peer (a call of kind desktop).",
        discussion: "The same as `meshnode call ADDR --desktop`; the display is $DISPLAY or --source x11:DISPLAY.")

    @Argument(help: "Whom to share with: NAME or NAME@HOST:PORT.")
    var address: String
    @OptionGroup var peer: PeerOptions
    @OptionGroup var media: MediaOptions
    @Option(help: "Seconds the share runs once media flows.")
    var duration: Double = 60
    @Flag(help: "Print one JSON summary instead of text.")
    var json = false

    func run() async throws {
        let report = try await CallRunner(peer: peer, media: media, json: json).run(address: address, kind: .desktop, duration: duration)
        throw ExitCode(report.ok ? 0 : 1)
    }
}

/// Runs one outgoing call for `call` and `share`.
struct CallRunner {
    let peer: PeerOptions
    let media: MediaOptions
    let json: Bool

    func run(address: String, kind: CallKind, duration: Double) async throws -> CallReport {
        let peerActor = Peer(client: try peer.client(), options: try media.callOptions(), acceptPolicy: .never)
        let status = StatusLine(enabled: !json)
        do {
            try await peerActor.connect()
        } catch let error as SignalingError {
            return finish(CallReport.failure(to: address, kind: kind.rawValue, error: "\(error.code.rawValue): \(error.reason)"))
        }
        let call: Call
        do {
            call = try await peerActor.call(address, kind: kind)
        } catch {
            await peerActor.close()
            return finish(CallReport.failure(to: address, kind: kind.rawValue, error: "\(error)"))
        }
        status.note("calling \(address) (\(kind.rawValue))")
        // Wait for media, then let the call run for the duration, updating the status line.
        var connectedAt: ContinuousClock.Instant?
        while await call.state != .ended {
            let state = await call.state
            if state != .ringing, state != .connecting, connectedAt == nil { connectedAt = .now }
            if let connectedAt, ContinuousClock.now - connectedAt >= .seconds(duration) { break }
            status.update(await call.report(), state: state)
            try? await Task.sleep(for: .milliseconds(250))
        }
        await call.hangup()
        let report = await call.report()
        status.clear()
        await peerActor.close()
        return finish(report)
    }

    /// A room call (docs/rooms.md): joins the room, starts its call or joins the running one,
    /// runs until `duration` seconds after the latest pairwise call began (or, with a `goal`,
    /// until its call to the forwarder decoded that much, plus ``ForwardedDecodeGoal/grace``),
    /// leaves, and prints one report per pairwise call. True only if there was at least one and
    /// media flowed both ways in each.
    func runRoomCall(_ room: String, kind: CallKind, duration: Double, until goal: ForwardedDecodeGoal? = nil,
                     share: (source: VideoSourceSpec, after: Double)? = nil) async throws -> Bool {
        let peerActor = Peer(client: try peer.client(), options: try media.callOptions(), acceptPolicy: .never)
        let status = StatusLine(enabled: !json)
        let id: String
        do {
            try await peerActor.connect()
            try await peerActor.client.join(room: room)
            id = try await peerActor.joinRoomCall(room, kind: kind)
        } catch {
            await peerActor.close()
            _ = finish(CallReport.failure(to: room, kind: kind.rawValue, error: "\(error)"))
            return false
        }
        status.note("in room call \(id) of \(room)")
        // Every pairwise call that ever ran, to report; the run ends `duration` after the last
        // one connected (or after `duration` plus the ring time with nobody).
        var seen: [String: Call] = [:]
        var order: [String] = []
        var connected: [String: ContinuousClock.Instant] = [:]
        var seenAt: [String: ContinuousClock.Instant] = [:]
        var goalReached: ContinuousClock.Instant?
        var shared: Set<String> = []
        let began = ContinuousClock.now
        while true {
            for call in await peerActor.roomCallPeers where seen[call.id] == nil {
                seen[call.id] = call
                seenAt[call.id] = .now
                order.append(call.id)
            }
            // A call still being set up (the one to the forwarder when the call moves there)
            // keeps the run going until it connects, for at most 30 s.
            var settingUp = false
            for (callID, call) in seen where connected[callID] == nil {
                let state = await call.state
                if state != .ringing, state != .connecting, state != .ended {
                    connected[callID] = .now
                } else if state != .ended, let since = seenAt[callID], ContinuousClock.now - since < .seconds(30) {
                    settingUp = true
                }
            }
            // The share goes to the forwarder (docs/rooms.md "Added streams"), once per call to it.
            if let share {
                for (callID, call) in seen where call.forwarded && !shared.contains(callID) {
                    guard let since = connected[callID], ContinuousClock.now - since >= .seconds(share.after), await call.state == .connected else { continue }
                    shared.insert(callID)
                    status.note("sharing in the call to the forwarder")
                    Task { do { try await call.addShare(share.source) } catch { status.note("the share failed: \(error)") } }
                }
            }
            if let goal, goalReached == nil {
                for call in seen.values where call.forwarded {
                    guard await call.state != .ended, await call.hasDecoded(frames: goal.frames, fromSenders: goal.senders) else { continue }
                    goalReached = .now
                    status.note("decoded \(goal.frames) frames of \(goal.senders) participants through the forwarder")
                    break
                }
            }
            if let goalReached, ContinuousClock.now - goalReached >= ForwardedDecodeGoal.grace { break }
            let last = connected.values.max()
            if let last, !settingUp, ContinuousClock.now - last >= .seconds(duration) { break }
            if last == nil, ContinuousClock.now - began >= .seconds(duration + 30) { break }
            try? await Task.sleep(for: .milliseconds(250))
        }
        await peerActor.leaveRoomCall()
        // Judged as RoomCallVerdict says: the last call with each participant and with the forwarder.
        var outcomes: [RoomCallVerdict.Outcome] = []
        for id in order {
            guard let call = seen[id] else { continue }
            await call.waitUntilEnded()
            let report = finish(await call.report())
            outcomes.append(.init(remote: call.remote, forwarded: call.forwarded, ok: report.ok))
        }
        let ok = RoomCallVerdict.ok(outcomes)
        status.clear()
        await peerActor.close()
        return ok
    }

    private func finish(_ report: CallReport) -> CallReport {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(TerminalText.safe(String(decoding: (try? encoder.encode(report)) ?? Data(), as: UTF8.self), json: true))
        } else {
            print(TerminalText.safe(StatusLine.summary(report), keepLayout: true))
        }
        fflush(nil)
        return report
    }
}

/// When a participant of a forwarded room call has seen enough (`--until-decoded N --senders K`):
/// N frames of every stream of each of K other participants decoded through the forwarder.
/// Tests end on it instead of waiting a fixed time.
struct ForwardedDecodeGoal {
    var frames: Int
    var senders: Int

    /// A forwarded call's other participants at most.
    static let maxSenders = 19
    /// How long a participant stays once it reached its goal: the others began to decode it at
    /// about the same time as it decoded them, and reach their own goal meanwhile.
    static let grace: Duration = .seconds(2)
}
