import Foundation

/// A child process for integration tests: a real `meshnode serve`, coturn's tools, or a peer.
/// Output goes to a file so a chatty child never blocks on a full pipe.
final class Subprocess: @unchecked Sendable {
    // @unchecked: Foundation's Process is not Sendable; each instance is used by one test.
    let process = Process()
    let outputURL: URL
    let name: String
    /// How long `stop()` waits after SIGTERM before SIGKILL (coturn's tools ignore SIGTERM).
    var terminationGrace: Double = 5

    init(_ executable: String, _ arguments: [String], name: String? = nil) throws {
        self.name = name ?? URL(fileURLWithPath: executable).lastPathComponent
        outputURL = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-test-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        let handle = try FileHandle(forWritingTo: outputURL)
        process.executableURL = URL(fileURLWithPath: Self.resolve(executable))
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
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

    /// Waits until the output contains `text`, or fails after `timeout` seconds.
    func waitForOutput(_ text: String, timeout: Double = 20) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if output.contains(text) { return }
            if !process.isRunning { throw TestFailure("\(name) exited (\(process.terminationStatus)) before printing '\(text)':\n\(output)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("\(name) did not print '\(text)' within \(timeout) s:\n\(output)")
    }

    /// Waits for the process to exit on its own; kills it after `timeout` seconds.
    @discardableResult
    func waitForExit(timeout: Double) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning {
            stop()
            return nil
        }
        return process.terminationStatus
    }

    /// SIGTERM, then SIGKILL if it does not go within `terminationGrace`.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(terminationGrace)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
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
