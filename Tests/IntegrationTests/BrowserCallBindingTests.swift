import Foundation
import Signaling
import Testing
import TestSupport

/// The page binds a call to its other party's full address and key (issue 15, finding 1), and
/// checks freshness and replays itself (finding 5): played against Chromium on the real page.
@Suite("Web page: call messages only from the call's other party", .serialized, .timeLimit(.minutes(5)),
       .enabled(if: chromiumAvailable, "chromium, chromedriver or selenium is missing: install Debian's chromium and chromium-driver, and selenium (`make test-deps`)"))
struct BrowserCallBindingTests {
    let browser = BrowserTests()

    @Test("a local lookalike of the remote caller (alice at east vs alice@west) cannot offer into or hang up carol's call, nor become her contact by chat; stale and replayed messages are refused by the page")
    func lookalikeIsRefused() async throws {
        let east = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { east.stop() }
        let west = try await MeshNodeServer(["--link", east.signalingURL], bind: ["127.0.0.1"])
        defer { west.stop() }
        try await waitUntil("west's link to east", interval: .milliseconds(100)) {
            (try? await west.meshStatus().links.contains("127.0.0.1:\(east.httpPort)")) == true
        }
        let carol = "carol@127.0.0.1:\(east.httpPort)"
        let result = try await browser.runDriver(["guard", "--name", "carol", "--wait", "90"], url: "http://127.0.0.1:\(east.httpPort)/") { driver in
            try await driver.waitForOutput("logged-in")
            // The real caller, alice at west.
            let alice = SignalingClient(url: west.signalingURL, name: "alice", identity: .generate(), requestTimeout: .seconds(20))
            let aliceEvents = EventLog(alice)
            try await alice.connect()
            let callID = try await alice.call(carol, kind: .audio)
            try await aliceEvents.wait { if case .callSetup(let p) = $0, p.type == .accept, p.call == callID { p } else { nil } }

            // The lookalike: a local `alice` at east, her own key, signing correct payloads.
            let lookalike = SignalingClient(url: east.signalingURL, name: "alice", identity: .generate(), requestTimeout: .seconds(20))
            try await lookalike.connect()
            try await lookalike.callSetup(.sdp, to: "carol", call: callID, sdpType: "offer",
                                          sdp: "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 EE:EE\r\n")
            try await lookalike.callSetup(.hangup, to: "carol", call: callID, reason: "lookalike")
            try await lookalike.send(text: "hi, add me", to: "carol")
            await lookalike.close()

            // The real caller still reaches the call: its hangup ends it.
            try await alice.callSetup(.hangup, to: carol, call: callID, reason: "bye")
            await alice.close()
        }
        let freshness = try #require(result["freshness"] as? [String: Any])
        #expect(freshness["yearOld"] as? String == "stale", "\(freshness)")
        #expect(freshness["ahead"] as? String == "stale", "\(freshness)")
        #expect(freshness["fresh"] as? String == "ok", "\(freshness)")
        #expect(freshness["replay"] as? String == "replayed", "\(freshness)")
        #expect(freshness["evictedReplay"] as? String == "replayed", "\(freshness)")
        #expect((freshness["smallCacheSize"] as? Int ?? 99) <= 8, "\(freshness)")

        #expect(result["peer"] as? String == "alice@127.0.0.1:\(west.httpPort)")
        let reason = result["endReason"] as? String ?? ""
        #expect(reason == "hangup-remote: bye", "the call ended with '\(reason)', not by the real caller's hangup")
        let refused = result["refused"] as? [[String: Any]] ?? []
        let fromLookalike = Set(refused.filter { $0["from"] as? String == "alice" && $0["code"] as? String == "not-party" }.compactMap { $0["type"] as? String })
        #expect(fromLookalike == ["sdp", "hangup"], "refused: \(refused)")

        let contacts = result["contacts"] as? [String: [String: Any]] ?? [:]
        #expect(contacts["alice"]?["stranger"] as? Bool == true, "\(contacts)")
        #expect((result["savedContacts"] as? [String] ?? ["?"]).isEmpty, "a caller or a stranger's chat was saved as a contact: \(result["savedContacts"] ?? "-")")
    }
}
