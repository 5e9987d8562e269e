import Foundation
import Testing
import TestSupport

/// The page as a person uses it (issue 14), driven by clicks and typing in headless Chromium:
/// `Tests/Browser/meshnode_browser.py page CHECK` (docs/web.md "Tests").
@Suite("Web page: logged out, log out, second tab, ringing, languages, call controls, accessibility", .serialized, .timeLimit(.minutes(10)),
       .enabled(if: chromiumAvailable, "chromium, chromedriver or selenium is missing: install Debian's chromium and chromium-driver, and selenium (`make test-deps`)"))
struct BrowserPageTests {
    let browser = BrowserTests()

    func runPage(_ check: String) async throws -> [String: Any] {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let result = try await browser.runDriver(["page", check], url: "http://127.0.0.1:\(node.httpPort)/")
        return try #require((result["checks"] as? [String: [String: Any]])?[check])
    }

    @Test("logged out the workspace is hidden and Add does nothing; Log out clears the user's contacts, calls and chat; a second tab's login shows 'in use elsewhere' in the first, whose chat waits and goes out after 'Use here'")
    func basics() async throws {
        let outcome = try await runPage("basics")
        #expect(outcome["replacedBanner"] as? Bool == true)
    }

    @Test("the caller sees 'Calling …' and Cancel at once and Cancel stops the callee's ringing; a third caller gets busy; a call to a hidden page raises a notification and rings")
    func ringing() async throws {
        let outcome = try await runPage("ringing")
        #expect(outcome["cancel"] as? String == "cancel-remote")
        #expect(outcome["busy"] as? String == "busy")
        let hidden = outcome["hidden"] as? [String: Any] ?? [:]
        #expect((hidden["notifications"] as? Int ?? 0) >= 1 && hidden["tone"] as? Bool == true, "\(hidden)")
    }

    @Test("call controls by clicks: mute silences the other side's audio and camera off stops its frames (and both come back); each side switches to a screen share and back while the other decodes it; the sharer sees its share; another camera, microphone and speaker mid-call; timer and quality shown, details closed")
    func controls() async throws {
        let outcome = try await runPage("controls")
        #expect(outcome["energyWhileMuted"] as? Double == 0, "\(outcome)")
        #expect((outcome["energyAfterUnmute"] as? Double ?? 0) > 0, "\(outcome)")
        #expect(["good", "fair", "poor"].contains(outcome["quality"] as? String ?? ""), "\(outcome)")
        #expect(outcome["videoSwitch"] as? String == "ok" && outcome["audioSwitch"] as? String == "ok", "\(outcome)")
    }

    @Test("room call by clicks, three pages: Video call, rung (dialog and tone), Join and Not now, the running call joined later, grids of three decoding, a shared screen large on the others' pages, Chinese with no English, busy to a one-to-one call, Leave call ends it; a lying node's participants refused; axe-core 0 violations in each state at both sizes")
    func roomCall() async throws {
        let outcome = try await runPage("roomcall")
        let states = outcome["states"] as? [String: Int] ?? [:]
        #expect(states.count == 12 && states.values.allSatisfy { $0 == 0 }, "\(states)")
        // A lying node's forged participants (tampered, another call or room, a changed key, a
        // leave, a repeat, an unendorsed device key) are each refused; the honest one is kept.
        let probe = outcome["probe"] as? [String: [String: Any]] ?? [:]
        #expect(probe.count == 7 && probe.values.allSatisfy { $0["refused"] as? Int == 1 && $0["kept"] as? [String] == ["rc-probe-a"] }, "\(probe)")
        #expect(outcome["busy"] as? String == "busy", "a one-to-one call during a room call: \(outcome["busy"] ?? "-")")
        print("room-call states (axe violations): \(states); screenshots in \(outcome["directory"] ?? "-")")
    }

    @Test("axe-core (wcag2a, wcag2aa, wcag21a, wcag21aa): no violation in any state at 1280×800 and 390×844, targets of 44 px at phone size; a screenshot of each")
    func accessibility() async throws {
        let outcome = try await runPage("a11y")
        let states = outcome["states"] as? [String: Int] ?? [:]
        #expect(states.count == 18 && states.values.allSatisfy { $0 == 0 }, "\(states)")
        print("page states (axe violations): \(states); screenshots in \(outcome["directory"] ?? "-")")
    }

    @Test("rooms across two linked nodes, three browsers: create and join #room and #room@node by the form, chat both ways, members with presence in words, unread counts per room and contact, history after a page reload (IndexedDB and the host's history), scrolling back pages through 76 messages, leave")
    func rooms() async throws {
        let host = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { host.stop() }
        let other = try await MeshNodeServer(["--link", host.signalingURL], bind: ["127.0.0.1"])
        defer { other.stop() }
        let hostAddress = "127.0.0.1:\(host.httpPort)"
        try await waitUntil("the second node links to the host", interval: .milliseconds(100)) {
            (try? await other.meshStatus().links.contains(hostAddress)) == true
        }
        let result = try await browser.runDriver(["--url2", "http://127.0.0.1:\(other.httpPort)/", "page", "rooms"], url: "http://\(hostAddress)/")
        let outcome = try #require((result["checks"] as? [String: [String: Any]])?["rooms"])
        #expect(outcome["historyMessages"] as? Int == 76, "\(outcome)")
        #expect((outcome["pagesScrolled"] as? Int ?? 0) >= 1, "\(outcome)")
    }

    @Test("keyboard only: log in, add a contact, call, accept and hang up; focus visible at every stop, to the contact field after login, to the dialog, back to the call button after the call")
    func keyboard() async throws {
        let outcome = try await runPage("keyboard")
        #expect(outcome["afterCall"] as? String == outcome["callButton"] as? String)
    }

    @Test("English or Simplified Chinese from the browser's languages, switched on the page and remembered; in Chinese no English string of the page is visible in any state")
    func languages() async throws {
        let outcome = try await runPage("language")
        let states = outcome["states"] as? [String: String] ?? [:]
        #expect(states.count >= 10 && states["room"] == "ok" && states.values.allSatisfy { $0 == "ok" }, "\(states)")
    }
}
