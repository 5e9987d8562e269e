import Foundation

/// A fresh directory under the system's temporary directory, removed with everything in it when
/// the value is released.
public final class TemporaryDirectory: Sendable {
    public let path: String

    /// A new directory under `base` (the system's temporary directory when nil or absent).
    public init(_ label: String, in base: String? = nil) {
        let parent = base.flatMap { FileManager.default.fileExists(atPath: $0) ? URL(fileURLWithPath: $0) : nil }
            ?? FileManager.default.temporaryDirectory
        path = parent.appendingPathComponent("meshnode-\(label)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
