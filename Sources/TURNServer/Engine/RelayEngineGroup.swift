import Synchronization

/// The relay engines of one TURN server, and when their allocations share one thread.
///
/// Every engine wakes for the datagrams of its own allocations. At a moderate rate a wake-up
/// finds few datagrams, and two engines wake about twice as often per datagram as one: measured
/// at 80,000 relayed datagrams/s (`bench/turn/profile`), two engines spent 0.14 `epoll_wait` and
/// 0.12–0.24 context switches per datagram against 0.07 and 0.08–0.12 for one, and the switch
/// itself was the largest single cost (`finish_task_switch`, 13% of the engines' CPU). So while
/// all engines together receive fewer than ``consolidateBelow`` datagrams per second, the other
/// engines hand their allocations to the first one (the **primary**), and once the primary
/// receives more than twice that, it hands each allocation back to the engine of its loop (its
/// **home**): one thread while one is plenty, every thread when the load needs them.
///
/// An allocation moves whole — both its sockets, its routes and budgets — so its two directions
/// never run on two threads, and the data path stays without locks: a path belongs to the
/// engine named by ``RelayPath/owner``, which the giving engine stores (release) after it last
/// touched the path and before it posts the path to the taker. The NIO loop posts route updates
/// and the close to the owner it reads; an engine that gets one for a path it gave away passes
/// it on (``RelayEngine/post(_:about:)``).
final class RelayEngineGroup: Sendable {
    /// Below this many datagrams per second received by all engines, allocations gather on the
    /// primary; above twice this on the primary, they go home. 0: never gather.
    let consolidateBelow: Int
    /// After allocations went home, they stay there at least this long (ns), so that a rate
    /// near the threshold does not move them back and forth.
    static let holdAfterSpread: UInt64 = 2_000_000_000
    /// How often each engine measures its rate (ns).
    static let window: UInt64 = 100_000_000

    private let members = Mutex<(engines: [RelayEngine], rates: [Int])>(([], []))
    /// When allocations last went home (monotonic ns).
    let lastSpread = Atomic<UInt64>(0)

    init(consolidateBelow: Int) {
        self.consolidateBelow = max(0, consolidateBelow)
    }

    var spreadAbove: Int { 2 * consolidateBelow }

    /// Adds an engine; returns its index (0: the primary).
    func join(_ engine: RelayEngine) -> Int {
        members.withLock { members in
            members.engines.append(engine)
            members.rates.append(0)
            return members.engines.count - 1
        }
    }

    func engine(_ index: Int) -> RelayEngine? {
        members.withLock { index < $0.engines.count ? $0.engines[index] : nil }
    }

    var count: Int { members.withLock { $0.engines.count } }

    /// Records an engine's rate of the last window; returns the sum over all engines.
    func report(_ index: Int, rate: Int) -> Int {
        members.withLock { members in
            if index < members.rates.count { members.rates[index] = rate }
            return members.rates.reduce(0, +)
        }
    }
}
