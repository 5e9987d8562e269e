import Foundation

/// Files of the source tree that tests read: fixtures, helper scripts.
public enum TestFiles {
    /// The package root (this file is `Tests/TestSupport/TestFiles.swift`).
    public static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A path relative to the package root, e.g. `Tests/Interop/aiortc_peer.py`.
    public static func url(_ relativePath: String) -> URL {
        packageRoot.appendingPathComponent(relativePath)
    }

    /// The text of a file relative to the package root.
    public static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: url(relativePath), encoding: .utf8)
    }
}
