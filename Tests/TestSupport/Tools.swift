import Foundation

/// The external programs some tests need, for `.enabled(if:)` traits: a test whose tool is
/// missing is reported as skipped with the trait's comment, never as passed. `make test-deps`
/// (and CI) installs all of them, so there nothing is skipped.
public enum Tools {
    /// Whether every program named is on PATH (or in /usr/sbin).
    public static func installed(_ names: String...) -> Bool {
        names.allSatisfy(Subprocess.isInstalled)
    }

    /// Whether `python3 -c "import …"` succeeds for every module named.
    public static func pythonImports(_ modules: String...) -> Bool {
        guard installed("python3"),
              let check = try? Subprocess("python3", ["-c", modules.map { "import \($0)" }.joined(separator: "; ")])
        else { return false }
        return check.waitUntilExit() == 0
    }

    /// Xvfb and xsetroot (Debian `xvfb`, `x11-xserver-utils`): a virtual screen to capture and paint.
    public static let xvfb = installed("Xvfb", "xsetroot")
    /// ffmpeg and ffprobe (Debian `ffmpeg`): independent readers of our media files.
    public static let ffmpeg = installed("ffmpeg", "ffprobe")
    /// coturn's client tools (Debian `coturn`): an independent TURN client and UDP echo peer.
    public static let coturnClients = installed("turnutils_uclient", "turnutils_peer")
    /// aiortc for python3 (`make aiortc-deps`): an independent WebRTC peer.
    public static let aiortc = pythonImports("aiortc")
}
