/// A set that remembers the last `capacity` keys inserted, forgetting the oldest first: bounded
/// memory for deduplicating redelivered messages.
struct RecentSet: Sendable {
    let capacity: Int
    private var members: Set<String> = []
    private var order: [String] = []
    private var head = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Inserts `key`; false when it was already there.
    mutating func insert(_ key: String) -> Bool {
        guard !members.contains(key) else { return false }
        members.insert(key)
        if order.count < capacity {
            order.append(key)
        } else {
            members.remove(order[head])
            order[head] = key
            head = (head + 1) % capacity
        }
        return true
    }

    func contains(_ key: String) -> Bool { members.contains(key) }
}
