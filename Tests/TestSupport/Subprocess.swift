import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A child process for tests: a real `meshnode serve`, coturn's tools, Xvfb, a peer. Started with
/// posix_spawn and reaped with waitpid, so its state never depends on a Foundation run loop;
/// output (stdout and stderr) goes to a file so a chatty child never blocks on a full pipe.
public final class Subprocess: Sendable {
    public let pid: pid_t
    public let outputURL: URL
    public let name: String
    /// How long `stop()` waits after SIGTERM before SIGKILL (coturn's tools ignore SIGTERM).
    public let terminationGrace: Duration
    /// The exit status once reaped.
    private let exitStatus = Mutex<Int32?>(nil)

    public init(_ executable: String, _ arguments: [String], name: String? = nil, terminationGrace: Duration = .seconds(3)) throws {
        self.name = name ?? URL(fileURLWithPath: executable).lastPathComponent
        self.terminationGrace = terminationGrace
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

    /// Full path of a program on PATH (or `name` itself when it is a path).
    public static func resolve(_ name: String) -> String {
        if name.contains("/") { return name }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
        for dir in path + ["/usr/sbin", "/sbin"] {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return "/usr/bin/\(name)"
    }

    public static func isInstalled(_ name: String) -> Bool {
        FileManager.default.isExecutableFile(atPath: resolve(name))
    }

    /// Runs a program to its end and returns its exit status and output; kills it after
    /// `timeout` (status nil then).
    public static func run(_ executable: String, _ arguments: [String], timeout: Duration = TestDeadline.event) async throws -> (status: Int32?, output: String) {
        let process = try Subprocess(executable, arguments)
        let status = await process.waitForExit(timeout: timeout)
        return (status, process.output)
    }

    public var output: String { (try? String(contentsOf: outputURL, encoding: .utf8)) ?? "" }

    /// The exit status once the child has exited (128 + signal when killed), else nil.
    public var status: Int32? { reap(blocking: false) }

    public var isRunning: Bool { status == nil }

    private func reap(blocking: Bool) -> Int32? {
        exitStatus.withLock { exitStatus in
            if let exitStatus { return exitStatus }
            var raw: Int32 = 0
            var result: pid_t
            repeat {
                result = waitpid(pid, &raw, blocking ? 0 : WNOHANG)
            } while result == -1 && errno == EINTR
            guard result == pid else { return nil }
            let code = raw & 0x7F == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
            exitStatus = code
            return code
        }
    }

    /// Blocks the calling thread until the child exits; for short tools run from synchronous code.
    @discardableResult
    public func waitUntilExit() -> Int32 {
        reap(blocking: true) ?? -1
    }

    /// Sends a signal (SIGTERM by default).
    public func terminate(_ signal: Int32 = SIGTERM) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits until the output contains `text`, or fails after `timeout`.
    public func waitForOutput(_ text: String, timeout: Duration = TestDeadline.event) async throws {
        try await waitForOutput(timeout: timeout, describe: "'\(text)'") { $0.contains(text) }
    }

    /// Waits until `ready` holds for the output, or fails after `timeout`.
    public func waitForOutput(timeout: Duration = TestDeadline.event, describe: String, _ ready: (String) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if ready(output) { return }
            if let status { throw TestFailure("\(name) exited (\(status)) before printing \(describe):\n\(output)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("\(name) did not print \(describe) within \(timeout):\n\(output)")
    }

    /// Waits for the process to exit on its own; kills it after `timeout` (nil then).
    @discardableResult
    public func waitForExit(timeout: Duration = TestDeadline.event) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let status { return status }
            try? await Task.sleep(for: .milliseconds(50))
        }
        stop()
        return nil
    }

    /// SIGTERM (and SIGCONT, in case a test stopped it), then SIGKILL if it does not go within
    /// `terminationGrace`; reaps the child. It blocks its thread: keep the grace short.
    public func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        kill(pid, SIGCONT)
        let deadline = ContinuousClock.now + terminationGrace
        while isRunning && ContinuousClock.now < deadline { usleep(20_000) }
        if isRunning {
            kill(pid, SIGKILL)
            waitUntilExit()
        }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: outputURL)
    }
}
