import Logging
internal import CUDPShims
#if canImport(Glibc)
import Glibc
#endif

/// Gives the calling thread the niceness of the process's main thread.
///
/// A thread inherits its niceness from the thread that creates it, and the Swift runtime's
/// worker threads set their own by quality of service (nice 0 for the default). The TURN
/// event loops and relay engines are created from such a worker, so without this a node
/// started with `nice -n -10` (or systemd's `Nice=-10`) would run its data path at nice 0,
/// below the very processes it relays for, and lose the CPU to them under load: that is what
/// made the relay's p99 reach 150–200 ms in bench/run, which runs everything at nice -10.
func adoptProcessNiceness(logger: Logger, thread: String) {
    guard CUDPShims_thread_adopt_process_niceness() != 0 else { return }
    logger.notice("cannot give a TURN thread the process's niceness; it keeps its own", metadata: [
        "thread": "\(thread)", "errno": "\(errno)",
    ])
}
