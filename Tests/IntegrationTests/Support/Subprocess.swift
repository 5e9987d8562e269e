import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process for integration tests: a real `meshnode serve`, coturn's tools, or a peer.
/// Started with posix_spawn and reaped with waitpid, so its state never depends on a
/// Foundation run loop; output goes to a file so a chatty child never blocks on a full pipe.
final class Subprocess: @unchecked Sendable {
    // @unchecked: the mutable exit status is guarded by `lock`.
    let pid: pid_t
    let outputURL: URL
    let name: String
    /// How long `stop()` waits after SIGTERM before SIGKILL (coturn's tools ignore SIGTERM).
    var terminationGrace: Double = 3
    private let lock = NSLock()
    private var exitStatus: Int32?

    init(_ executable: String, _ arguments: [String], name: String? = nil) throws {
        self.name = name ?? URL(fileURLWithPath: executable).lastPathComponent
        outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-test-\(UUID().uuidString).log")
        let path = Self.resolve(executable)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputURL.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, path, &actions, nil, argv, environ)
        guard result == 0 else { throw TestFailure("cannot start \(path): \(String(cString: strerror(result)))") }
        pid = child
    }

    /// Full path of a program on PATH.
    static func resolve(_ name: String) -> String {
        if name.contains("/") { return name }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "/usr/bin/\(name)"
    }

    static func isInstalled(_ name: String) -> Bool {
        FileManager.default.isExecutableFile(atPath: resolve(name))
    }

    var output: String { (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "" }

    /// The exit status once the child has exited (128 + signal when killed), else nil.
    var status: Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let exitStatus { return exitStatus }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
        let code = raw & 0x7F == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
        exitStatus = code
        return code
    }

    var isRunning: Bool { status == nil }

    /// Sends a signal (SIGTERM by default).
    func terminate(_ signal: Int32 = SIGTERM) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits until the output contains `text`, or fails after `timeout` seconds.
    func waitForOutput(_ text: String, timeout: Double = 20) async throws {
        try await waitForOutput(timeout: timeout, describe: "'\(text)'") { $0.contains(text) }
    }

    /// Waits until `ready` holds for the output, or fails after `timeout` seconds.
    func waitForOutput(timeout: Double = 20, describe: String, _ ready: (String) -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if ready(output) { return }
            if let status { throw TestFailure("\(name) exited (\(status)) before printing \(describe):\n\(output)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("\(name) did not print \(describe) within \(timeout) s:\n\(output)")
    }

    /// Waits for the process to exit on its own; kills it after `timeout` seconds (nil then).
    @discardableResult
    func waitForExit(timeout: Double) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let status { return status }
            try? await Task.sleep(for: .milliseconds(50))
        }
        stop()
        return nil
    }

    /// SIGTERM (and SIGCONT, in case a test stopped it), then SIGKILL if it does not go within
    /// `terminationGrace`; reaps the child. It blocks its thread: keep the grace short.
    func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        kill(pid, SIGCONT)
        let deadline = Date().addingTimeInterval(terminationGrace)
        while isRunning && Date() < deadline { usleep(20_000) }
        if isRunning {
            kill(pid, SIGKILL)
            while isRunning { usleep(5_000) }
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: outputURL)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
