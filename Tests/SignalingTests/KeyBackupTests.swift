import Foundation
import Testing
import TestSupport
@testable import Signaling

/// The key backup file (docs/protocol.md "Key backup file"): both kinds open with the right
/// passphrase, and a wrong passphrase, an edited file and a file asking for cheap stretching
/// each get their own clear error.
@Suite struct KeyBackupTests {
    @Test("Argon2id and PBKDF2-SHA256 backups open with the passphrase and give back the same key", arguments: KeyBackup.Stretching.allCases)
    func roundTrip(_ stretching: KeyBackup.Stretching) throws {
        let identity = Identity.generate()
        let sealed = try KeyBackup.seal(identity, passphrase: "correct horse battery staple", name: "alice", stretching: stretching)
        let parsed = try KeyBackup.parse(Data(sealed.json.utf8))
        #expect(parsed.kdf.name == stretching.rawValue && parsed.key == identity.publicKeyBase64)
        #expect(try parsed.open(passphrase: "correct horse battery staple").publicKeyBase64 == identity.publicKeyBase64)
        let wrong = #expect(throws: SignalingError.self) { try parsed.open(passphrase: "correct horse battery stapler") }
        #expect(wrong?.code == .badSignature && wrong?.reason.contains("wrong passphrase") == true)
    }

    @Test("an edited file says so: a changed ciphertext, key, or iteration count; a file asking for fewer than 600,000 iterations is refused")
    func tamperedFileIsRefused() throws {
        let sealed = try KeyBackup.seal(Identity.generate(), passphrase: "pass phrase", stretching: .pbkdf2)
        var flipped = sealed
        var bytes = Array(Data(base64Encoded: sealed.ciphertext)!)
        bytes[3] ^= 1
        flipped.ciphertext = Data(bytes).base64EncodedString()
        var otherKey = sealed
        otherKey.key = Identity.generate().publicKeyBase64
        for edited in [flipped, otherKey] {
            let error = #expect(throws: SignalingError.self) { try edited.open(passphrase: "pass phrase") }
            #expect(error?.code == .badField && error?.reason.contains("changed") == true, "\(String(describing: error))")
        }
        // An attacker who also fixes `check` still cannot lower the stretching below the floor.
        var cheap = sealed
        cheap.kdf.iterations = 1000
        cheap.check = cheap.digest
        let error = #expect(throws: SignalingError.self) { try cheap.open(passphrase: "pass phrase") }
        #expect(error?.reason.contains("600000") == true, "\(String(describing: error))")
        // …and one that fixes `check` after flipping the ciphertext meets AES-GCM's tag.
        flipped.check = flipped.digest
        #expect(throws: SignalingError.self) { try flipped.open(passphrase: "pass phrase") }
    }
}
