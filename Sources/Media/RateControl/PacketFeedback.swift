/// What the sender learns about one sent packet from transport-wide congestion control feedback
/// (draft-holmer-rmcat-transport-wide-cc-extensions-01): when it left, how big it was, and when
/// (or whether) it arrived, on the receiver's clock.
public struct PacketFeedback: Hashable, Sendable {
    /// The transport-wide sequence number.
    public var sequenceNumber: Int64
    /// When the sender sent it, on the sender's clock.
    public var sendTime: Duration
    /// Its size in bytes, headers included.
    public var size: Int
    /// When it arrived, on the receiver's clock; `nil` when it was reported lost.
    public var arrivalTime: Duration?

    /// Creates a result.
    public init(sequenceNumber: Int64, sendTime: Duration, size: Int, arrivalTime: Duration?) {
        self.sequenceNumber = sequenceNumber
        self.sendTime = sendTime
        self.size = size
        self.arrivalTime = arrivalTime
    }
}
