import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file descriptors a process may spend on connections that outsiders open: the signaling
/// server's WebSocket connections and the TURN server's TCP and TLS connections (and the relay
/// sockets their allocations hold) take their slots from one budget (setting `max-connections`).
///
/// One budget instead of one per service, because the limit it protects is one: at
/// `RLIMIT_NOFILE` the runtime itself fails (libdispatch's worker monitor traps when it cannot
/// open `/proc/self/task/*/stat`), which kills the whole node. Separate caps that each fit
/// would still add up to more than the process may open. A service refuses new connections
/// when the budget is spent; its own caps (per source address, per service) keep one kind of
/// client from taking the whole budget.
///
/// Shared between threads and event loops: counting is one atomic compare-and-exchange.
public final class ConnectionBudget: Sendable {
    /// Slots in all.
    public let maximum: Int
    private let count = Atomic<Int>(0)

    /// A budget of `maximum` slots (at least one).
    public init(maximum: Int) {
        self.maximum = max(1, maximum)
    }

    /// Slots taken now.
    public var current: Int { count.load(ordering: .relaxed) }

    /// Takes a slot; false when all are taken. Every `true` is paired with one ``release()``.
    public func acquire() -> Bool {
        var seen = count.load(ordering: .relaxed)
        while seen < maximum {
            let (exchanged, original) = count.compareExchange(expected: seen, desired: seen + 1, ordering: .relaxed)
            if exchanged { return true }
            seen = original
        }
        return false
    }

    /// Gives back a slot taken with ``acquire()``.
    public func release() {
        count.subtract(1, ordering: .relaxed)
    }

    /// The default budget: the open-file limit minus headroom for everything else the process
    /// opens (listeners, SQLite, links to other nodes, the runtime's own files): a tenth of the
    /// limit, at least 512. 20,000 open files (this project's machines) give 18,000.
    public static func defaultMaximum(openFileLimit: Int = ConnectionBudget.openFileLimit()) -> Int {
        max(16, openFileLimit - max(512, openFileLimit / 10))
    }

    /// The soft `RLIMIT_NOFILE`, after raising it to the hard limit where the system allows.
    public static func openFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur == rlim_t.max ? 1 << 20 : Int(clamping: limit.rlim_cur)
    }
}
