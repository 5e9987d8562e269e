import Foundation

/// A fresh directory under the system's temporary directory, removed with everything in it when
/// the value is released.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String) {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-\(label)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
