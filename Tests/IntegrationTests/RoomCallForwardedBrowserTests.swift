import Foundation
import Testing
import TestSupport

/// Issue 16's test (docs/rooms.md "Moving to the forwarder"): three CLI peers and one Chromium in
/// a room call peer to peer; then a fifth participant (a CLI) joins and the call moves to the
/// node's forwarder (`meshnode serve --forwarder`). The page starts the call, so this is also "a
/// person starts a room call of five from the page".
///
/// Before the fifth comes, the test plays an attacker on the signaling path: it hands the page a
/// `room-call-state` whose forwarder assignment is signed by a key other than the node key the
/// page pinned at login, then one naming the pinned key with a signature that does not verify.
/// The page refuses both, shows why, calls no forwarder and keeps its pairwise calls.
///
/// After the move: Chromium decodes every CLI's video through the forwarder (per-sender
/// `framesDecoded` growing, audio packets and energy growing), its pairwise calls are gone, a
/// speaker is highlighted. Then the page reloads and joins the forwarded call again: it calls
/// only the forwarder and decodes all four again. Each CLI decodes every other CLI's test pattern (frame numbers
/// advancing) and the page's camera through the forwarder, and hears every tone.
@Suite("room call: three CLI peers and Chromium, then forwarded", .serialized, .timeLimit(.minutes(4)),
       .enabled(if: chromiumAvailable, "chromium, chromedriver or selenium is missing: install Debian's chromium and chromium-driver, and selenium (`make test-deps`)"))
struct RoomCallForwardedBrowserTests {
    let browser = BrowserTests()
    static let clis = ["alice", "bob", "carol"]
    /// The page's uplink estimate (b/s) above which it must send its top layer (see the check).
    static let topLayerEstimate = 600_000.0

    @Test("the page starts a room call with three CLI peers; forged assignments are refused; a fifth joins and everyone moves to the forwarder and decodes everyone")
    func pageAndFourCLIsMoveToTheForwarder() async throws {
        let node = try await MeshNodeServer(["--forwarder"], bind: ["127.0.0.1"])
        defer { node.stop() }
        defer { if let dump = ProcessInfo.processInfo.environment["MESHNODE_DUMP_NODE_LOG"] { try? node.process.output.write(toFile: dump, atomically: true, encoding: .utf8) } }
        let peers = try CallPeers("room-call-forwarded-browser")
        // Small pictures at 5 frames a second: four processes and a browser encode and decode on
        // two cores. At 10 the machine stayed saturated, the forwarder's ICE to participants failed
        // mid-call (restarted), Chromium's uplink estimate stayed under 100 kb/s and the CLIs
        // decoded 20-60 of its frames: 1 pass in 4 runs, against 4 in 4 at 5 (session 17).
        let sources = ["--source", "pattern:320x180@5", "--source", "tone"]
        for name in Self.clis + ["erin"] { _ = try await peers.options(name) }
        var cli: [String: Subprocess] = [:]
        defer { for process in cli.values { process.stop() } }
        let started = ContinuousClock.now
        // Each CLI stays `duration` seconds after its latest call connected: the first three long
        // enough that the page's peer-to-peer phase (decoding, the forgeries) ends before they
        // go on a loaded machine; all stay long enough after their call to the forwarder for the
        // page to measure, screenshot and reload (with 16 s between asking the fifth in and the
        // page decoding all four through the forwarder, seen once on a loaded machine, 34/30 s
        // left the page reloading into a room whose CLIs had gone; the page may wait 6 s more for
        // its top layer to start).
        let result = try await browser.runDriver(["room", "--name", "dave", "--room", "#family", "--kind", "video", "--others", "3",
                                                  "--forge", "--forwarded", "4", "--reload", "--wait", "90", "--seconds", "60", "--stay-with", "0"],
                                                 url: "http://127.0.0.1:\(node.httpPort)/") { driver in
            try await driver.waitForOutput("\"in-call\"")
            for name in Self.clis {
                cli[name] = try peers.startCall(name, to: "#family", node: node.signalingURL, duration: 56, extra: sources)
            }
            // The fifth, once the page decodes the three peer to peer and refused the forgeries.
            try await driver.waitForOutput("\"ready-for-more\"", timeout: TestDeadline.event * 3)
            cli["erin"] = try peers.startCall("erin", to: "#family", node: node.signalingURL, duration: 52, extra: sources)
        }
        for (name, process) in cli {
            let exit = await process.waitForExit(timeout: TestDeadline.event * 2)
            #expect(exit == 0, "\(name): \(process.output.suffix(3000))")
        }
        let elapsed = ContinuousClock.now - started

        // The forgeries: refused with a reason, shown, the pairs kept.
        let forged = try #require(result["forged"] as? [String: Any], "\(result)")
        let otherKey = try #require(forged["other-key"] as? [String: Any])
        #expect(otherKey["code"] as? String == "bad-signature", "\(otherKey)")
        #expect((otherKey["reason"] as? String ?? "").contains("not by the key pinned for this node"), "\(otherKey)")
        let badSignature = try #require(forged["bad-signature"] as? [String: Any])
        #expect(badSignature["code"] as? String == "bad-signature" && (badSignature["reason"] as? String ?? "").contains("does not verify"), "\(badSignature)")
        // axe-core (WCAG 2.1 AA) and 44 px targets with the refusal shown, and on the grid of five.
        #expect((forged["axe"] as? [String: Int] ?? [:]).count == 2 && (forged["axe"] as? [String: Int] ?? [:]).values.allSatisfy { $0 == 0 }, "\(forged["axe"] ?? "-")")
        let kept = forged["pairsKept"] as? [String: Int] ?? [:]
        #expect(Set(kept.keys) == Set(Self.clis) && kept.values.allSatisfy { $0 > 0 }, "pairs after the forgeries: \(kept)")

        // Chromium through the forwarder: every CLI's frames and sound growing.
        let forwarded = try #require(result["forwarded"] as? [String: Any], "\(result)")
        #expect(forwarded["address"] as? String == "forwarder")
        let growth = try #require(forwarded["growth"] as? [String: [String: Any]], "\(forwarded)")
        #expect(Set(growth.keys) == Set(Self.clis + ["erin"]), "the page decoded \(growth.keys.sorted()) through the forwarder")
        for (name, grew) in growth {
            #expect((grew["framesDecoded"] as? Int ?? 0) > 0, "page ← \(name): \(grew)")
            #expect((grew["audioPackets"] as? Int ?? 0) > 0, "page ← \(name): \(grew)")
            #expect((grew["audioEnergy"] as? Double ?? 0) > 0, "page ← \(name): no sound energy \(grew)")
        }
        // The page reloaded in the forwarded call and joined again: it called only the forwarder
        // (which replaced its earlier call) and decoded all four again.
        let rejoined = try #require(result["rejoined"] as? [String: Any], "no rejoin after the reload: \(result)")
        #expect(rejoined["sameCall"] as? Bool == true, "\(rejoined)")
        #expect((rejoined["pairs"] as? [String])?.isEmpty == true, "the page placed pairwise calls in a forwarded call: \(rejoined)")
        let again = rejoined["frames"] as? [String: Int] ?? [:]
        #expect(Set(again.keys) == Set(Self.clis + ["erin"]), "after the reload: \(again)")
        // The page sends the forwarder simulcast layers (RFC 8853) halving down from its camera's
        // picture, as many as Chromium encodes for it: `h` and `f` from the fake camera's 640x480
        // (three from 960x540; docs/rooms.md "Chromium's top layer"), at least the lowest.
        let layers = forwarded["layers"] as? [[String: Any]] ?? []
        #expect(Set(layers.compactMap { $0["rid"] as? String }) == ["h", "f"], "\(layers)")
        #expect(layers.contains { $0["rid"] as? String == "h" && ($0["framesEncoded"] as? Int ?? 0) > 0 }, "\(layers)")
        // And its top layer too: its uplink estimate, which the forwarder's transport-cc
        // feedback drives, carries all three on loopback (it used to stay near 300 kb/s and
        // pause `f` with qualityLimitationReason "bandwidth").
        let uplink = forwarded["uplink"] as? [String: Any] ?? [:]
        let top = layers.first { $0["rid"] as? String == "f" } ?? [:]
        let topWidth = top["frameWidth"] as? Int ?? 0
        // Chromium encodes only as many layers as its input picture allows and drops the last
        // encodings: offered q, h, f from 640x480, `f` never went (docs/rooms.md "Chromium's top layer").
        // Chromium starts `f` only when its uplink estimate carries `h`'s target and `f`'s least
        // (about 250 + 250 kb/s at 640x480). On a quiet machine the forwarder's feedback takes the
        // estimate there within seconds; on a loaded one (CI: five CLIs, Chromium and the node on
        // two cores) it has stayed near 350 kb/s, the delay of packets waiting for a CPU read as
        // a queue on the path. Below `topLayerEstimate` that is the known issue; above it, a page
        // that does not send `f` is a failure.
        let estimate = uplink["availableOutgoingBitrate"] as? Double ?? 0
        let topSent = (top["framesSent"] as? Int ?? 0) > 0 && topWidth > 0
        if estimate >= Self.topLayerEstimate {
            #expect(topSent, "the page did not send its top layer with an estimate of \(estimate) b/s: \(layers); its uplink \(uplink)")
        } else {
            withKnownIssue("the page's uplink estimate stays low on a CPU-starved machine", isIntermittent: true) {
                #expect(topSent, "the page did not send its top layer, its estimate \(estimate) b/s: \(layers); its uplink \(uplink)")
            }
        }
        let layerFigures = layers.map { "\($0["rid"] ?? "?") \($0["frameWidth"] ?? 0)w \($0["framesSent"] ?? 0) frames sent, target \((($0["targetBitrate"] as? Double) ?? 0) / 1000) kb/s, \($0["limitation"] ?? "-")" }
            + ["estimate \(((uplink["availableOutgoingBitrate"] as? Double) ?? 0) / 1000) kb/s"]
        #expect((forwarded["axe"] as? [String: Int] ?? [:]).count == 2 && (forwarded["axe"] as? [String: Int] ?? [:]).values.allSatisfy { $0 == 0 }, "\(forwarded["axe"] ?? "-")")
        let speaking = forwarded["speaking"] as? [String] ?? []
        #expect(!speaking.isEmpty, "nobody highlighted as speaking")
        #expect((forwarded["status"] as? String ?? "").contains("via node relay"), "\(forwarded["status"] ?? "")")
        #expect(forwarded["badge"] as? String == "via node relay", "\(forwarded["badge"] ?? "")")
        let chinese = forwarded["chinese"] as? [String: String] ?? [:]
        #expect(chinese["badge"] == "经节点中继" && (chinese["status"] ?? "").contains("经节点中继"), "\(chinese)")

        // The CLIs: one call to the forwarder each, decoding every other participant.
        var figures: [String] = []
        var daveWidths: [Int] = []
        let everyone = Set(Self.clis + ["erin", "dave"])
        for (name, process) in cli.sorted(by: { $0.key < $1.key }) {
            let reports = try RoomCallCLITests.reports(in: process.output)
            let report = try #require(reports["forwarder"], "\(name) has no report of a call to the forwarder: \(reports.keys.sorted())")
            #expect(report["ok"] as? Bool == true, "\(name): \(report)")
            let receptions = try #require(report["forwarded"] as? [[String: Any]], "\(name): \(report)")
            #expect(Set(receptions.compactMap { $0["from"] as? String }) == everyone.subtracting([name]), "\(name) received \(receptions.map { $0["from"] ?? "?" })")
            for reception in receptions {
                let from = reception["from"] as? String ?? "?"
                let streams = try #require(reception["streams"] as? [[String: Any]])
                let video = try #require(streams.first { $0["kind"] as? String == "video" }, "\(name) ← \(from): no video")
                let audio = try #require(streams.first { $0["kind"] as? String == "audio" }, "\(name) ← \(from): no audio")
                #expect((audio["receivedFrames"] as? Int ?? 0) > 0, "\(name) ← \(from): no audio decoded")
                if from == "dave" {
                    // Chromium's fake camera has no frame numbers: its frames decoded, steadily (a
                    // forwarder that waits on a simulcast layer Chromium paused gave 0–36 here).
                    #expect((video["receivedFrames"] as? Int ?? 0) >= 50, "\(name) ← dave: \(video)")
                    figures.append("\(name)←dave \(video["receivedFrames"] ?? 0) frames \(video["width"] ?? 0)x\(video["height"] ?? 0)")
                    daveWidths.append(video["width"] as? Int ?? 0)
                } else {
                    let first = video["firstPatternFrame"] as? Int ?? -1
                    let last = video["lastPatternFrame"] as? Int ?? -1
                    #expect(first >= 0 && last > first, "\(name) ← \(from): pattern frames \(first)…\(last)")
                    figures.append("\(name)←\(from) \(first)…\(last)")
                }
            }
        }
        // A CLI receiver got the page's top layer through the forwarder (the forwarder picks each
        // receiver's layer from its own estimate, so not necessarily every one).
        // Known issue: the CLIs' own downlink estimates still sink on a loaded machine ("Receivers
        // starved of CPU look congested", docs/rooms.md), and a switch to `f` waits for its key frame.
        withKnownIssue("CLI receivers starved of CPU keep the page's lower layer", isIntermittent: true) {
            #expect(topWidth > 0 && daveWidths.contains(topWidth), "no CLI decoded the page's top layer (\(topWidth) wide): \(daveWidths)")
        }
        let pageFigures = growth.sorted { $0.key < $1.key }.map { "dave←\($0.key) +\($0.value["framesDecoded"] ?? 0) frames" }
        print("figure: room call of 5 from the page (3 CLI + Chromium peer to peer, then forwarded): setup \(result["setupMs"] ?? "-") ms; the page decoded 4 senders through the forwarder \(forwarded["moveMs"] ?? "-") ms after the fifth was asked in (its call to the forwarder connected \(forwarded["connectedAt"] ?? "-") ms and decoded \(forwarded["decodedAt"] ?? "-") ms after it was placed; the page ended its own pairs \(forwarded["pairsEndedMs"] ?? "-") ms after it, when the CLIs had not already); \(pageFigures.joined(separator: ", ")) in \(forwarded["windowMs"] ?? "-") ms; CLIs: \(figures.joined(separator: ", ")); the page's layers \(layerFigures.joined(separator: ", ")); speaking: \(speaking); after a reload the page decoded all four through the forwarder again in \(rejoined["ms"] ?? "-") ms; whole test \(elapsed)")
        // With `MESHNODE_TEST_LOG=info`, the forwarder's last word on each uplink's transport-cc
        // feedback: how long after a packet came off the socket its feedback went out.
        let uplinkLogs = node.process.output.split(separator: "\n").filter { $0.contains("'s uplink transport-cc") }
        var lastPerUplink: [String: Substring] = [:]
        for line in uplinkLogs {
            guard let range = line.range(of: "'s uplink transport-cc") else { continue }
            let who = line[..<range.lowerBound].split(separator: " ").last.map(String.init) ?? "?"
            lastPerUplink[who] = line[range.lowerBound...]
        }
        if !lastPerUplink.isEmpty {
            print("figure: the forwarder's uplink feedback: \(lastPerUplink.sorted { $0.key < $1.key }.map { "\($0.key)\($0.value)" }.joined(separator: "; "))")
        }
    }
}
