import ArgumentParser
import Foundation
import ICE
import STUN

/// `meshnode net-watch`: this host's address changes as a peer sees them.
struct NetWatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "net-watch",
        abstract: "Print this host's address changes as a peer sees them (Linux rtnetlink).",
        discussion: """
        A peer (join, call, share) watches its addresses to notice a move to another network \
        at once: when the address its signaling connection or a call's path uses goes away, it \
        reconnects and restarts ICE without waiting for silence (docs/calls.md "This side's \
        network changed"). This prints the same changes: one line per burst of events (an \
        interface change is a burst: address gone, link down, another link up, its address, \
        its route), 200 ms after its last event. Loopback, link-local and tentative IPv6 \
        addresses are left out, as the peer leaves them out.
        """
    )

    @Option(help: "Stop after this many seconds (default: until interrupted).")
    var seconds: Double?
    @Flag(help: "Print JSON lines.")
    var json = false

    func run() async throws {
        if let seconds, !(seconds > 0) { throw ValidationError("--seconds must be above 0") }
        let monitor: NetworkMonitor
        do {
            monitor = try NetworkMonitor()
        } catch {
            throw ValidationError(error.reason)
        }
        emit(json ? #"{"event":"watching","portID":\#(monitor.portID)}"# : "watching this host's addresses (netlink port \(monitor.portID))")
        if let seconds {
            Task {
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                monitor.stop()
            }
        }
        for await change in monitor.changes {
            emit(json ? Self.json(change) : change.description)
        }
    }

    private func emit(_ line: String) {
        print(line)
        fflush(nil)
    }

    static func json(_ change: NetworkChange) -> String {
        func list(_ addresses: Set<IPAddress>) -> String {
            "[" + addresses.map { "\"\($0)\"" }.sorted().joined(separator: ",") + "]"
        }
        return #"{"added":\#(list(change.added)),"defaultRouteChanged":\#(change.defaultRouteChanged),"event":"changed","#
            + #""eventsLost":\#(change.eventsLost),"linkChanged":\#(change.linkChanged),"removed":\#(list(change.removed))}"#
    }
}
