import Synchronization

/// Ids of the messages a node writes itself (acks, errors, presence): a per-process random
/// prefix and a counter, unique across restarts without a `UUID()` (a random draw and a
/// formatted string) per routed message (issue 17). docs/protocol.md asks only that an id be
/// unique per sender, 1–64 characters.
enum NodeMessageID {
    private static let prefix: String = {
        var generator = SystemRandomNumberGenerator()
        return String(generator.next() as UInt64, radix: 36)
    }()
    private static let counter = Atomic<UInt64>(0)

    /// `n-PREFIX-COUNT`, about 20 characters.
    static func next() -> String {
        let count = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return "n-" + prefix + "-" + String(count, radix: 36)
    }
}
