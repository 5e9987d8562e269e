import Foundation
import Testing
import TestSupport
@testable import Codecs

/// An Xvfb server on a free display number, stopped when the value is released.
final class VirtualDisplay {
    let name: String
    private let process: Process

    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/Xvfb") }

    init(width: Int, height: Int) throws {
        let number = (90..<400).first { number in
            !FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\(number)") && !FileManager.default.fileExists(atPath: "/tmp/.X\(number)-lock")
        } ?? 399
        name = ":\(number)"
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/Xvfb")
        process.arguments = [name, "-screen", "0", "\(width)x\(height)x24", "-nolisten", "tcp"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait for the server's socket, up to 10 s.
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: "/tmp/.X11-unix/X\(number)") {
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    deinit {
        // SIGKILL, not terminate(): a child spawned from a test thread inherits its blocked signal
        // mask, SIGTERM included, and would never exit.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Runs an X client against this display.
    func run(_ tool: String, _ arguments: [String]) throws -> Int32 {
        guard let result = try runTool(tool, ["-display", name] + arguments) else {
            Issue.record("\(tool) is not installed: `make deps` installs Debian's x11-xserver-utils")
            return -1
        }
        return result.status
    }
}

@Suite("X11 screen capture (XCB, MIT-SHM) under Xvfb", .serialized)
struct X11CaptureTests {
    @Test("captures what an X client drew on the root window, through MIT-SHM and GetImage",
          .enabled(if: VirtualDisplay.isInstalled, "Xvfb is not installed (Debian package xvfb; `make deps` installs it)"))
    func captureUnderXvfb() throws {
        let display = try VirtualDisplay(width: 320, height: 240)
        var capture: X11ScreenCapture?
        for _ in 0..<100 where capture == nil {
            capture = try? X11ScreenCapture(display: display.name)
            if capture == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        let screen = try #require(capture, "Xvfb on \(display.name) did not come up")
        #expect(screen.width == 320 && screen.height == 240)

        #expect(try display.run("xsetroot", ["-solid", "#ff0000"]) == 0)
        let red = try screen.capturePixel(x: 10, y: 10)
        #expect(red.red == 255 && red.green == 0 && red.blue == 0)
        let redFrame = try screen.capture()
        // BT.601 limited range: pure red is Y 82, Cb 90, Cr 240.
        #expect(abs(Int(redFrame.y[1000]) - 82) <= 1 && abs(Int(redFrame.u[100]) - 90) <= 1 && abs(Int(redFrame.v[100]) - 240) <= 1)

        #expect(try display.run("xsetroot", ["-solid", "#0000ff"]) == 0)
        let plain = try X11ScreenCapture(display: display.name, allowSharedMemory: false)
        #expect(!plain.usesSharedMemory)
        #expect(try plain.capturePixel(x: 300, y: 200) == (0, 0, 255))
        #expect(try screen.capturePixel(x: 300, y: 200) == (0, 0, 255))

        // A grid of white lines on black: both levels appear, in the proportion of the pattern.
        #expect(try display.run("xsetroot", ["-mod", "8", "8", "-fg", "white", "-bg", "black"]) == 0)
        let grid = try screen.capture()
        let white = grid.y.filter { $0 > 200 }.count, black = grid.y.filter { $0 < 30 }.count
        #expect(white > 1000 && black > 10_000 && white + black == grid.y.count)

        // The capture feeds the VP8 encoder in screen-content mode.
        let encoder = try VP8Encoder(.init(width: 320, height: 240, content: .screen))
        let encoded = try #require(try encoder.encode(grid, timestamp: 0))
        let decoded = try #require(try VP8Decoder().decode(encoded.data))
        #expect((decoded.lumaPSNR(against: grid) ?? 0) > 25)

        let frames = 60
        let start = ContinuousClock.now
        for _ in 0..<frames { _ = try screen.capture() }
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        let elapsed = Double(seconds) + Double(attoseconds) * 1e-18
        print("X11 capture 320×240 via \(screen.usesSharedMemory ? "MIT-SHM" : "GetImage"): \(String(format: "%.0f", Double(frames) / elapsed)) fps including I420 conversion (debug build)")
        #expect(screen.usesSharedMemory, "Xvfb offers MIT-SHM")
    }

    @Test("a display that does not exist is a clear error")
    func missingDisplay() {
        expectError(CodecError.Code.unavailable) { _ = try X11ScreenCapture(display: ":4321") }
    }
}
