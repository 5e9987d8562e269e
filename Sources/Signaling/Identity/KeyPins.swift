import Foundation
import Synchronization

/// Keys a client has seen, by peer address (trust on first use, DESIGN.md "Security model"):
/// the first key seen for an address is pinned; a different key later is refused.
/// Stored as JSON (`{"alice@127.0.0.1:8080": "base64 key"}`) when a path is given.
public final class KeyPins: Sendable {
    /// What `check` found.
    public enum Outcome: Sendable, Equatable {
        /// First time this address was seen: the key is now pinned.
        case pinned
        /// The pinned key.
        case known
    }

    public let path: String?
    private let pins: Mutex<[String: String]>

    /// `~/.config/meshnode/known_peers.json`.
    public static var defaultPath: String { IdentityFile.configDirectory + "/known_peers.json" }

    /// Pins kept in memory only (`path` nil) or in a JSON file, loaded now.
    public init(path: String?) {
        self.path = path
        var loaded: [String: String] = [:]
        if let path, let data = FileManager.default.contents(atPath: path),
           let decoded = try? JSONDecoder().decode([String: String].self, from: data) {
            loaded = decoded
        }
        pins = Mutex(loaded)
    }

    /// The key pinned for `address`, if any.
    public func key(for address: String) -> String? {
        pins.withLock { $0[address] }
    }

    /// Pins `key` for `address` on first sight; throws `key-changed` when another key is pinned.
    @discardableResult
    public func check(_ address: String, key: String) throws(SignalingError) -> Outcome {
        let result: Result<Outcome, SignalingError> = pins.withLock { pins in
            if let pinned = pins[address] {
                if pinned == key { return .success(.known) }
                let file = path.map { " If the change is expected, remove the entry for \(address) from \($0)." } ?? ""
                return .failure(SignalingError(.keyChanged, "the key of \(address) changed: pinned \(pinned), now \(key); refusing it.\(file)"))
            }
            pins[address] = key
            return .success(.pinned)
        }
        let outcome = try result.get()
        if outcome == .pinned { save() }
        return outcome
    }

    private func save() {
        guard let path else { return }
        let snapshot = pins.withLock { $0 }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let data = try? encoder.encode(snapshot) else { return }
        let directory = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
