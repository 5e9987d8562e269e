/// Groups packets sent in one burst and gives the delay variation between consecutive groups, the
/// input of delay-based congestion control (draft-ietf-rmcat-gcc-02 §5.2): a group is the packets
/// sent within ``burstInterval`` of its first one, and for each pair of groups the change in
/// one-way delay is `(arrival delta) − (send delta)`.
///
/// A packet that arrives within ``burstInterval`` of the group's last one and sooner after it
/// than it was sent (its delay fell) also joins the group (§5.2: "a packet which has an
/// inter-arrival time less than burst_time and an inter-group delay variation d(i) less than 0
/// is considered being part of the current group"), for at most ``maxBurstDuration`` of
/// arrivals: a receiver that was held up (a busy thread, a radio waking) hands over the packets
/// that queued meanwhile in one burst, and read as separate groups they look like a queue on
/// the link that drains — a trend the link never had.
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
        var firstArrival: Duration
        var lastArrival: Duration
    }

    /// Packets sent within this interval of a group's first packet belong to it (5 ms in GCC).
    public let burstInterval: Duration
    /// The longest a burst of arrivals keeps extending one group (100 ms in libwebrtc's GCC).
    public static let maxBurstDuration: Duration = .milliseconds(100)
    private var current: Group?
    private var previous: Group?

    /// Creates a grouping with the given burst interval.
    public init(burstInterval: Duration = .milliseconds(5)) {
        self.burstInterval = burstInterval
    }

    /// Adds a received packet, in send order; returns the delta when it closes a group.
    public mutating func add(sendTime: Duration, arrivalTime: Duration) -> Delta? {
        guard var group = current else {
            current = Group(firstSend: sendTime, lastSend: sendTime, firstArrival: arrivalTime, lastArrival: arrivalTime)
            return nil
        }
        // A packet sent before the current group began is reordered: it says nothing new.
        guard sendTime >= group.firstSend else { return nil }
        let arrivalDelta = arrivalTime - group.lastArrival
        let arrivedInBurst = arrivalDelta >= .zero && arrivalDelta <= burstInterval && arrivalDelta < sendTime - group.lastSend
            && arrivalTime - group.firstArrival < Self.maxBurstDuration
        if sendTime - group.firstSend <= burstInterval || arrivedInBurst {
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
        current = Group(firstSend: sendTime, lastSend: sendTime, firstArrival: arrivalTime, lastArrival: arrivalTime)
        return delta
    }
}
