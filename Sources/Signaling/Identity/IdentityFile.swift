import Foundation
import MeshCore

/// The identity file of `meshnode keygen`: two lines, `meshnode-identity v1 ed25519` and the
/// base64 of the 32-byte seed, readable by its owner only (mode 0600).
public enum IdentityFile {
    static let header = "meshnode-identity v1 ed25519"

    /// `~/.config/meshnode/identity` (honouring `XDG_CONFIG_HOME`).
    public static var defaultPath: String {
        configDirectory + "/identity"
    }

    /// `$XDG_CONFIG_HOME/meshnode` or `~/.config/meshnode`.
    public static var configDirectory: String {
        UserDirectories.configHome + "/meshnode"
    }

    /// Writes a new identity; refuses to overwrite an existing file unless `force`.
    public static func create(at path: String, force: Bool = false) throws(SignalingError) -> Identity {
        if !force && FileManager.default.fileExists(atPath: path) {
            throw SignalingError(.badField, "\(path) exists; keep it (it is your identity) or remove it first")
        }
        let identity = Identity.generate()
        try save(identity, to: path)
        return identity
    }

    /// Saves with mode 0600, creating the directory (mode 0700) when needed.
    public static func save(_ identity: Identity, to path: String) throws(SignalingError) {
        let directory = (path as NSString).deletingLastPathComponent
        let text = header + "\n" + Data(identity.seed).base64EncodedString() + "\n"
        do {
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            // Create with 0600 before writing the secret, so it is never readable by others.
            _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        } catch {
            throw SignalingError(.internalError, "cannot write identity \(path): \(error.localizedDescription)")
        }
    }

    /// Loads an identity file.
    public static func load(from path: String) throws(SignalingError) -> Identity {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw SignalingError(.badField, "cannot read identity \(path): run `meshnode keygen --identity \(path)` first")
        }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.count >= 2, lines[0] == header, let seed = Data(base64Encoded: lines[1]) else {
            throw SignalingError(.badField, "\(path) is not a meshnode identity file")
        }
        return try Identity(seed: Array(seed))
    }
}
