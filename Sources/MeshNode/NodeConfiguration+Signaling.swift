import Foundation

/// The signaling settings of `meshnode serve`: `data-dir` (default `~/.local/share/meshnode`,
/// or `$XDG_DATA_HOME/meshnode`) and `heartbeat` in seconds (default 15).
extension NodeConfiguration {
    static func signaling(_ settings: NodeSettings) throws -> (dataDirectory: String, heartbeat: Duration) {
        var directory = settings.dataDir ?? defaultDataDirectory
        guard !directory.isEmpty else { throw NodeConfigurationError(key: "data-dir", reason: "must not be empty") }
        if directory.hasPrefix("~/") { directory = NSHomeDirectory() + directory.dropFirst(1) }
        let seconds = settings.heartbeat ?? 15
        guard seconds >= 0.1, seconds <= 3600 else {
            throw NodeConfigurationError(key: "heartbeat", reason: "must be 0.1 to 3600 seconds")
        }
        return (directory, .milliseconds(Int((seconds * 1000).rounded())))
    }

    static var defaultDataDirectory: String {
        let env = ProcessInfo.processInfo.environment
        let base = env["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.local/share")
        return base + "/meshnode"
    }
}
