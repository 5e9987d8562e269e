internal import CNice
import Foundation

/// A GLib main loop run on a dedicated GLib thread: the process's shared one, or one of a pool
/// (``ICEEventLoop``).
///
/// libnice drives connectivity checks, keepalives, TURN refreshes and socket reads from
/// the `GMainContext` its agents are created with; a blocked or unattended context stalls
/// them. Every `ICEAgent` therefore uses one loop's context for its whole life, and every
/// libnice call on it that is not documented as safe from any thread is made on that loop's
/// thread through ``invoke(_:)``.
///
/// `@unchecked Sendable`: the class owns the C objects `GMainContext` and `GMainLoop`,
/// which are created once in `init`, never mutated from Swift afterwards and live for the
/// whole process. `g_main_context_invoke` is documented as callable from any thread.
final class GLibMainLoop: @unchecked Sendable {
    /// The process-wide loop, started on first use.
    static let shared = GLibMainLoop(name: "meshnode-glib")

    /// A pool of loops, one per core (at most 8), started on first use.
    static let pool: [GLibMainLoop] = (1...max(1, min(8, ProcessInfo.processInfo.activeProcessorCount))).map {
        GLibMainLoop(name: "meshnode-glib-\($0)")
    }

    /// The `GMainContext*` libnice agents are bound to.
    let context: OpaquePointer
    private let loop: OpaquePointer

    private init(name: String) {
        context = g_main_context_new()
        loop = g_main_loop_new(context, 0)
        let thread = g_thread_new(
            name,
            { data in
                let mainLoop = Unmanaged<GLibMainLoop>.fromOpaque(data!).takeUnretainedValue()
                // Thread-default so that async GIO/libnice operations started here
                // (nice_agent_close_async) complete on this context.
                g_main_context_push_thread_default(mainLoop.context)
                g_main_loop_run(mainLoop.loop)
                g_main_context_pop_thread_default(mainLoop.context)
                return nil
            },
            Unmanaged.passRetained(self).toOpaque()
        )
        // The thread runs for the life of the process; drop our handle to it.
        g_thread_unref(thread)
    }

    /// Runs `body` on the GLib thread: immediately when called from it, otherwise as
    /// soon as the loop is idle.
    func invoke(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(InvocationBox(body)).toOpaque()
        g_main_context_invoke(
            context,
            { data in
                let box = Unmanaged<InvocationBox>.fromOpaque(data!).takeRetainedValue()
                box.body()
                return 0  // G_SOURCE_REMOVE
            },
            box
        )
    }

    /// Runs `body` on the GLib thread and returns its result to the awaiting task.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            invoke { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Runs a non-throwing `body` on the GLib thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            invoke { continuation.resume(returning: body()) }
        }
    }
}

private final class InvocationBox {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// Which GLib loop, and so which thread, runs an ICE agent: its checks, keepalives, TURN
/// refreshes and socket reads, and a tap's work on each datagram (``ICEAgent/deliverDatagrams(to:)``).
///
/// Most agents share one loop. A forwarded call's agents do all of a packet's work on their
/// loop's thread (decrypt, forward, protect and send each copy), so every call would be
/// forwarded on one core if they shared it too: they take a loop of a pool (one per core) by the
/// call's id instead, so that one call's packets stay on one thread, in turn, and calls spread
/// over the cores (docs/rooms.md "Cost per packet").
public struct ICEEventLoop: Sendable {
    let glib: GLibMainLoop

    /// The process's shared loop.
    public static var shared: ICEEventLoop { ICEEventLoop(glib: .shared) }

    /// The loop of the pool for `key`: the same one for the same key, for the life of the process.
    public static func pooled(by key: String) -> ICEEventLoop {
        let pool = GLibMainLoop.pool
        // FNV-1a: spreads keys like room call ids evenly and is the same in every run.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return ICEEventLoop(glib: pool[Int(hash % UInt64(pool.count))])
    }

    /// How many loops the pool has (one per core, at most 8).
    public static var poolSize: Int { GLibMainLoop.pool.count }
}
