import Synchronization

/// An event stream for one consumer that bounds its *data* events and never drops its
/// *control* events.
///
/// Received packets arrive as fast as a peer (or an attacker) sends them; a consumer that falls
/// behind must not make the process queue them without limit. A UDP socket's receive buffer
/// drops what does not fit, and so does this stream: once `dataBound` data events wait unread,
/// a new data event is dropped and counted (``droppedData``). Control events (a state change,
/// a candidate, the end of a session) are rare, always queued, and keep their order among
/// themselves and relative to the data events that were queued.
///
/// The producer counts a data event in before it enqueues it and the consumer's iterator counts
/// it out after it takes it, so the count never undercounts what waits: at most `dataBound`
/// data events are ever queued. Consume it from one task with `for await`.
public struct BoundedEventStream<Element: Sendable>: AsyncSequence, Sendable {
    public typealias Failure = Never

    /// What ``Producer/yield(_:)`` did with an event.
    public enum YieldResult: Sendable, Equatable {
        /// Queued for the consumer.
        case enqueued
        /// A data event dropped because `dataBound` data events wait; `total` counts every data
        /// event this stream has dropped, this one included.
        case dropped(total: Int)
        /// The stream has finished; the event is gone.
        case terminated

        /// Whether a drop is worth a log line: the first, then at each doubling of the total —
        /// so a flood of a million drops writes twenty lines, not a million.
        public var shouldReport: Bool {
            guard case .dropped(let total) = self else { return false }
            return total > 0 && total & (total - 1) == 0
        }
    }

    /// The counters producer and consumer share.
    final class Shared: Sendable {
        let bound: Int
        let isData: @Sendable (Element) -> Bool
        let queued = Atomic<Int>(0)
        let dropped = Atomic<Int>(0)

        init(bound: Int, isData: @escaping @Sendable (Element) -> Bool) {
            self.bound = bound
            self.isData = isData
        }
    }

    /// The producing end: yields events and finishes the stream.
    public struct Producer: Sendable {
        let continuation: AsyncStream<Element>.Continuation
        let shared: Shared

        /// Queues `event`, unless it is a data event and `dataBound` data events already wait.
        @discardableResult
        public func yield(_ event: Element) -> YieldResult {
            let data = shared.isData(event)
            if data {
                // Reserve a slot before enqueueing: the count is then never lower than what
                // waits, and never above the bound. The loop retries only when the consumer
                // took an event meanwhile, which frees a slot.
                var queued = shared.queued.load(ordering: .acquiring)
                while true {
                    if queued >= shared.bound {
                        return .dropped(total: shared.dropped.wrappingAdd(1, ordering: .relaxed).newValue)
                    }
                    let (exchanged, original) = shared.queued.compareExchange(
                        expected: queued, desired: queued + 1, ordering: .acquiringAndReleasing)
                    if exchanged { break }
                    queued = original
                }
            }
            switch continuation.yield(event) {
            case .terminated:
                if data { shared.queued.wrappingSubtract(1, ordering: .acquiringAndReleasing) }
                return .terminated
            default:
                return .enqueued
            }
        }

        /// Ends the stream once the consumer has read what is queued.
        public func finish() { continuation.finish() }
    }

    /// The consuming end's iterator; it counts data events out as it takes them.
    public struct Iterator: AsyncIteratorProtocol {
        var base: AsyncStream<Element>.Iterator
        let shared: Shared

        public mutating func next() async -> Element? {
            guard let event = await base.next() else { return nil }
            if shared.isData(event) { shared.queued.wrappingSubtract(1, ordering: .acquiringAndReleasing) }
            return event
        }
    }

    private let stream: AsyncStream<Element>
    private let shared: Shared

    /// Makes a stream and its producer.
    /// - Parameters:
    ///   - dataBound: how many data events may wait unread (at least 1).
    ///   - isData: which events are data (bounded, droppable); all others are control events.
    ///   - onTermination: called once when the stream ends (finished or the consumer gone).
    public static func makeStream(
        dataBound: Int, isData: @escaping @Sendable (Element) -> Bool,
        onTermination: (@Sendable () -> Void)? = nil
    ) -> (stream: BoundedEventStream, producer: Producer) {
        precondition(dataBound >= 1, "a bounded event stream needs room for one data event")
        let shared = Shared(bound: dataBound, isData: isData)
        let (stream, continuation) = AsyncStream<Element>.makeStream()
        if let onTermination { continuation.onTermination = { _ in onTermination() } }
        return (BoundedEventStream(stream: stream, shared: shared), Producer(continuation: continuation, shared: shared))
    }

    private init(stream: AsyncStream<Element>, shared: Shared) {
        self.stream = stream
        self.shared = shared
    }

    public func makeAsyncIterator() -> Iterator {
        Iterator(base: stream.makeAsyncIterator(), shared: shared)
    }

    /// How many data events may wait unread.
    public var dataBound: Int { shared.bound }
    /// Data events waiting now (counted in before they are queued and out after they are read,
    /// so never fewer than wait, and never above ``dataBound``).
    public var queuedData: Int { shared.queued.load(ordering: .acquiring) }
    /// Data events dropped so far because the consumer was ``dataBound`` behind.
    public var droppedData: Int { shared.dropped.load(ordering: .relaxed) }
}
