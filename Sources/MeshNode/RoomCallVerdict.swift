import Signaling

/// Whether a CLI participant's room call went well, judged from the reports of every pairwise
/// call and forwarder call it made (docs/rooms.md "Failure").
public enum RoomCallVerdict {
    public struct Outcome: Sendable {
        /// The other end: a participant's name, or a forwarder's address.
        public var remote: String
        public var forwarded: Bool
        public var ok: Bool

        public init(remote: String, forwarded: Bool, ok: Bool) {
            self.remote = remote
            self.forwarded = forwarded
            self.ok = ok
        }
    }

    /// `outcomes` in the order the calls began. Each participant is judged by its last pairwise
    /// call: an earlier one may have been replaced (it reloaded and called again) or crossed with
    /// its call and been answered busy. Calls to forwarders count as one, the last (after a
    /// failover it carries the room). Pairwise calls that began before the last call to a
    /// forwarder are not judged, whichever side ended them: the move cut them short, maybe before
    /// their first key frame, and the forwarder's call is only ok when it decoded every other
    /// participant. Pairwise calls that began after it (the call went back to peer to peer) are.
    public static func ok(_ outcomes: [Outcome]) -> Bool {
        let forwarderName = ForwarderAssignment.forwarderName
        let lastForwarded = outcomes.lastIndex { $0.forwarded }
        var last: [String: Bool] = [:]
        for (index, outcome) in outcomes.enumerated() {
            if !outcome.forwarded, let lastForwarded, index < lastForwarded { continue }
            last[outcome.forwarded ? forwarderName : outcome.remote] = outcome.ok
        }
        return !last.isEmpty && last.values.allSatisfy { $0 }
    }
}
