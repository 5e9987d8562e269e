import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An Xvfb server on a display number it picks itself (`-displayfd`, so parallel tests never
/// race for one), killed when the value is released.
public final class VirtualDisplay: Sendable {
    /// The display name, e.g. `:93`.
    public let name: String
    private let process: Subprocess

    /// Starts Xvfb with one screen of `width`×`height` and returns once it accepts clients.
    public static func start(width: Int, height: Int) async throws -> VirtualDisplay {
        // Xvfb writes the display number to the descriptor once it listens: to its stdout here,
        // which Subprocess sends to the output file with stderr.
        let process = try Subprocess("Xvfb", ["-displayfd", "1", "-screen", "0", "\(width)x\(height)x24", "-nolisten", "tcp", "-noreset"],
                                     name: "Xvfb", terminationGrace: .zero)
        var number: Int?
        try await process.waitForOutput(describe: "its display number") { output in
            number = output.split(separator: "\n").lazy.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.first
            return number != nil
        }
        return VirtualDisplay(name: ":\(number!)", process: process)
    }

    private init(name: String, process: Subprocess) {
        self.name = name
        self.process = process
    }

    /// Runs an X client against this display to its end and returns its exit status.
    public func run(_ tool: String, _ arguments: [String]) async throws -> Int32? {
        try await Subprocess.run(tool, ["-display", name] + arguments).status
    }

    deinit {
        // SIGKILL, not SIGTERM: a child spawned from a test thread inherits its blocked signal
        // mask, SIGTERM included, and would never exit.
        process.terminate(SIGKILL)
        process.waitUntilExit()
    }
}
