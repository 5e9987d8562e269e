import ArgumentParser
import Foundation
import Signaling

/// `meshnode keygen`: makes the Ed25519 identity a peer logs in with, and backs it up to (or
/// restores it from) a passphrase-encrypted file that the page reads and writes too.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create an Ed25519 identity (the key is who you are; names are bound to it), or back it up and restore it.",
        discussion: """
            The file holds the secret key and is created with mode 0600. An existing file is never overwritten.
            --backup FILE writes the identity encrypted under a passphrase (Argon2id, or PBKDF2-SHA256 with \
            --kdf pbkdf2-sha256 for a file the web page can restore too). --restore FILE writes the identity \
            from such a file, made here or by the page's "Back up my key".
            """
    )

    @Option(help: "Identity file (default ~/.config/meshnode/identity).")
    var identity: String?

    @Option(help: "Write an encrypted backup of the identity to this file.")
    var backup: String?

    @Option(help: "Restore the identity from this backup file.")
    var restore: String?

    @Option(help: "Passphrase stretching of a new backup: argon2id (default) or pbkdf2-sha256 (the page can read only this).")
    var kdf: String = KeyBackup.Stretching.argon2id.rawValue

    @Option(help: "Read the passphrase from the first line of this file instead of asking.")
    var passphraseFile: String?

    @Option(help: "The name this key logs in with, noted in the backup as a reminder.")
    var name: String?

    func run() throws {
        let path = identity ?? IdentityFile.defaultPath
        do {
            if backup != nil && restore != nil { throw ValidationError("give --backup or --restore, not both") }
            if let backup {
                try writeBackup(to: backup, identityPath: path)
            } else if let restore {
                try restoreBackup(from: restore, identityPath: path)
            } else {
                let created = try IdentityFile.create(at: path)
                print("identity: \(path)")
                print("public key: \(created.publicKeyBase64)")
            }
        } catch let error as SignalingError {
            throw ValidationError("\(error.code): \(error.reason)")
        }
    }

    private func writeBackup(to file: String, identityPath: String) throws {
        guard let stretching = KeyBackup.Stretching(rawValue: kdf) else {
            throw ValidationError("--kdf is argon2id or pbkdf2-sha256, not '\(kdf)'")
        }
        if FileManager.default.fileExists(atPath: file) { throw ValidationError("\(file) exists; choose another file name") }
        let key = try IdentityFile.load(from: identityPath)
        let passphrase = try readPassphrase(confirm: true)
        let sealed = try KeyBackup.seal(key, passphrase: passphrase, name: name, stretching: stretching)
        guard FileManager.default.createFile(atPath: file, contents: Data(sealed.json.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(file)")
        }
        print("backup: \(file) (\(stretching.rawValue))")
        print("public key: \(key.publicKeyBase64)")
    }

    private func restoreBackup(from file: String, identityPath: String) throws {
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
        let sealed = try KeyBackup.parse(data)
        let passphrase = try readPassphrase(confirm: false)
        let restored = try sealed.open(passphrase: passphrase)
        if FileManager.default.fileExists(atPath: identityPath) {
            if let existing = try? IdentityFile.load(from: identityPath), existing.publicKeyBase64 == restored.publicKeyBase64 {
                print("identity: \(identityPath) already holds this key")
                return
            }
            throw ValidationError("\(identityPath) holds another identity; restore into a new file with --identity FILE, or move it away first")
        }
        try IdentityFile.save(restored, to: identityPath)
        print("identity: \(identityPath)")
        print("public key: \(restored.publicKeyBase64)")
        if let name = sealed.name, !name.isEmpty { print("name: \(name)") }
    }

    private func readPassphrase(confirm: Bool) throws -> String {
        if let passphraseFile {
            guard let text = try? String(contentsOfFile: passphraseFile, encoding: .utf8),
                  let line = text.split(separator: "\n", omittingEmptySubsequences: false).first, !line.isEmpty else {
                throw ValidationError("cannot read a passphrase from the first line of \(passphraseFile)")
            }
            return String(line)
        }
        guard let first = getpass("Passphrase: ").map({ String(cString: $0) }), !first.isEmpty else {
            throw ValidationError("no passphrase given")
        }
        if confirm {
            guard let again = getpass("Passphrase again: ").map({ String(cString: $0) }), again == first else {
                throw ValidationError("the two passphrases differ")
            }
        }
        return first
    }
}
