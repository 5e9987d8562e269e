/// Groups packets sent in one burst and gives the delay variation between consecutive groups, the
/// input of delay-based congestion control (draft-ietf-rmcat-gcc-02 §5.2): a group is the packets
/// sent within ``burstInterval`` of its first one, and for each pair of groups the change in
/// one-way delay is `(arrival delta) − (send delta)`.
public struct PacketGroupDeltas: Sendable {
    /// The delay variation between two consecutive packet groups.
    public struct Delta: Hashable, Sendable {
        /// Time between the groups' last packets on the sender's clock.
        public var sendDelta: Duration
        /// Time between the groups' last packets on the receiver's clock.
        public var arrivalDelta: Duration
        /// When the newer group's last packet arrived.
        public var arrivalTime: Duration
    }

    private struct Group: Sendable {
        var firstSend: Duration
        var lastSend: Duration
        var lastArrival: Duration
    }

    /// Packets sent within this interval of a group's first packet belong to it (5 ms in GCC).
    public let burstInterval: Duration
    private var current: Group?
    private var previous: Group?

    /// Creates a grouping with the given burst interval.
    public init(burstInterval: Duration = .milliseconds(5)) {
        self.burstInterval = burstInterval
    }

    /// Adds a received packet, in send order; returns the delta when it closes a group.
    public mutating func add(sendTime: Duration, arrivalTime: Duration) -> Delta? {
        guard var group = current else {
            current = Group(firstSend: sendTime, lastSend: sendTime, lastArrival: arrivalTime)
            return nil
        }
        // A packet sent before the current group began is reordered: it says nothing new.
        guard sendTime >= group.firstSend else { return nil }
        if sendTime - group.firstSend <= burstInterval {
            group.lastSend = max(group.lastSend, sendTime)
            group.lastArrival = max(group.lastArrival, arrivalTime)
            current = group
            return nil
        }
        var delta: Delta?
        if let previous {
            delta = Delta(sendDelta: group.lastSend - previous.lastSend, arrivalDelta: group.lastArrival - previous.lastArrival,
                          arrivalTime: group.lastArrival)
        }
        previous = group
        current = Group(firstSend: sendTime, lastSend: sendTime, lastArrival: arrivalTime)
        return delta
    }
}
