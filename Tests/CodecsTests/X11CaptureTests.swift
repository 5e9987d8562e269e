import Foundation
import Testing
import TestSupport
@testable import Codecs

@Suite("X11 screen capture (XCB, MIT-SHM) under Xvfb", .serialized)
struct X11CaptureTests {
    @Test("captures what an X client drew on the root window, through MIT-SHM and GetImage",
          .enabled(if: Tools.xvfb, "Xvfb or xsetroot is not installed (Debian xvfb, x11-xserver-utils; `make deps` installs them)"))
    func captureUnderXvfb() async throws {
        let display = try await VirtualDisplay.start(width: 320, height: 240)
        defer { withExtendedLifetime(display) {} }
        let screen = try X11ScreenCapture(display: display.name)
        #expect(screen.width == 320 && screen.height == 240)

        #expect(try await display.run("xsetroot", ["-solid", "#ff0000"]) == 0)
        let red = try screen.capturePixel(x: 10, y: 10)
        #expect(red.red == 255 && red.green == 0 && red.blue == 0)
        let redFrame = try screen.capture()
        // BT.601 limited range: pure red is Y 82, Cb 90, Cr 240.
        #expect(abs(Int(redFrame.y[1000]) - 82) <= 1 && abs(Int(redFrame.u[100]) - 90) <= 1 && abs(Int(redFrame.v[100]) - 240) <= 1)

        #expect(try await display.run("xsetroot", ["-solid", "#0000ff"]) == 0)
        let plain = try X11ScreenCapture(display: display.name, allowSharedMemory: false)
        #expect(!plain.usesSharedMemory)
        #expect(try plain.capturePixel(x: 300, y: 200) == (0, 0, 255))
        #expect(try screen.capturePixel(x: 300, y: 200) == (0, 0, 255))

        // A grid of white lines on black: both levels appear, in the proportion of the pattern.
        #expect(try await display.run("xsetroot", ["-mod", "8", "8", "-fg", "white", "-bg", "black"]) == 0)
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
