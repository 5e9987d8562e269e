internal import CNice

/// The one GLib main loop of the process, run on a dedicated GLib thread.
///
/// libnice drives connectivity checks, keepalives, TURN refreshes and socket reads from
/// the `GMainContext` its agents are created with; a blocked or unattended context stalls
/// them. Every `ICEAgent` therefore uses this context, and every libnice call that is not
/// documented as safe from any thread is made on this thread through ``invoke(_:)``.
///
/// `@unchecked Sendable`: the class owns the C objects `GMainContext` and `GMainLoop`,
/// which are created once in `init`, never mutated from Swift afterwards and live for the
/// whole process. `g_main_context_invoke` is documented as callable from any thread.
final class GLibMainLoop: @unchecked Sendable {
    /// The process-wide loop, started on first use.
    static let shared = GLibMainLoop()

    /// The `GMainContext*` libnice agents are bound to.
    let context: OpaquePointer
    private let loop: OpaquePointer

    private init() {
        context = g_main_context_new()
        loop = g_main_loop_new(context, 0)
        let thread = g_thread_new(
            "meshnode-glib",
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
