import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The most WebSocket connections a node holds at once (setting `max-connections`). Counted when
/// an upgrade is accepted and released when the TCP connection closes, so a node near its
/// open-file limit refuses new clients (HTTP 503) instead of running out of descriptors: at
/// the limit the runtime itself fails (libdispatch's worker monitor traps when it cannot open
/// `/proc/self/task/*/stat`), which kills the process.
public final class ConnectionLimit: Sendable {
    public let maximum: Int
    private let count = Atomic<Int>(0)

    public init(maximum: Int) {
        self.maximum = max(1, maximum)
    }

    /// Connections held now.
    public var current: Int { count.load(ordering: .relaxed) }

    /// Takes a slot; false when all are taken.
    public func acquire() -> Bool {
        var seen = count.load(ordering: .relaxed)
        while seen < maximum {
            let (exchanged, original) = count.compareExchange(expected: seen, desired: seen + 1, ordering: .relaxed)
            if exchanged { return true }
            seen = original
        }
        return false
    }

    public func release() {
        count.subtract(1, ordering: .relaxed)
    }

    /// The default cap: the open-file limit minus headroom for everything else the process opens
    /// (TURN listeners and relay sockets, SQLite, the runtime's own files): a tenth of the
    /// limit, at least 512. 20,000 open files (this project's machines) give 18,000.
    public static func defaultMaximum(openFileLimit: Int = ConnectionLimit.openFileLimit()) -> Int {
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
