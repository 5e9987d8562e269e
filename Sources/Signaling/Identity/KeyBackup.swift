import Foundation
internal import CSodium
internal import COpenSSL

/// An identity encrypted under a passphrase (docs/protocol.md "Key backup file"): one JSON
/// file that the page and the CLI both read. The page writes PBKDF2-SHA256 files (WebCrypto has
/// no Argon2); the CLI writes Argon2id (libsodium `crypto_pwhash`) by default, PBKDF2 on request,
/// and reads both. The seed is sealed with AES-256-GCM; the associated data is the file's
/// header text, so that no field can be changed without the open failing; `check`, a SHA-256 of
/// the same text and the ciphertext, tells a damaged or edited file from a wrong passphrase.
public struct KeyBackup: Codable, Sendable, Equatable {
    public static let format = "meshnode-key-backup"
    /// OWASP's 2023 floor for PBKDF2-HMAC-SHA256; files asking for fewer are refused, so that
    /// an edited file cannot make guessing cheap.
    public static let minimumIterations = 600_000
    /// libsodium's MODERATE Argon2id limits (3 passes, 256 MiB): about a second here.
    public static let argon2Ops = 3
    public static let argon2Memory = 256 << 20

    /// The key derivation: `pbkdf2-sha256` with `iterations`, or `argon2id` with `opslimit`
    /// and `memlimit` (bytes); `salt` is 16 random bytes, base64.
    public struct KDF: Codable, Sendable, Equatable {
        public var name: String
        public var salt: String
        public var iterations: Int?
        public var opslimit: Int?
        public var memlimit: Int?
    }

    /// `aes-256-gcm` with a 12-byte `nonce`, base64.
    public struct Cipher: Codable, Sendable, Equatable {
        public var name: String
        public var nonce: String
    }

    public var format: String
    public var version: Int
    /// The name the key was used with (a reminder for people, optional).
    public var name: String?
    /// The Ed25519 public key, base64: which identity this is before anyone types a passphrase.
    public var key: String
    public var kdf: KDF
    public var cipher: Cipher
    /// The 32-byte seed sealed with its 16-byte tag appended, base64.
    public var ciphertext: String
    /// Lower-case hex SHA-256 of ``headerText`` + "\n" + `ciphertext`.
    public var check: String

    /// Which kind of passphrase stretching a new backup uses.
    public enum Stretching: String, Sendable, CaseIterable {
        case argon2id
        case pbkdf2 = "pbkdf2-sha256"
    }

    /// The text bound to the ciphertext (AES-GCM associated data) and hashed by `check`: every
    /// field but `ciphertext` and `check`, one a line.
    public var headerText: String {
        let params = kdf.name == Stretching.argon2id.rawValue
            ? "opslimit=\(kdf.opslimit ?? 0),memlimit=\(kdf.memlimit ?? 0)"
            : "iterations=\(kdf.iterations ?? 0)"
        return [Self.format + " v\(version)", name ?? "", key, kdf.name, params, kdf.salt, cipher.name, cipher.nonce].joined(separator: "\n")
    }

    /// Seals `identity` under `passphrase`.
    public static func seal(_ identity: Identity, passphrase: String, name: String? = nil, stretching: Stretching = .argon2id,
                            iterations: Int = minimumIterations) throws(SignalingError) -> KeyBackup {
        guard !passphrase.isEmpty else { throw SignalingError(.badField, "the passphrase is empty") }
        let salt = Sodium.randomBytes(16)
        let nonce = Sodium.randomBytes(12)
        let kdf = switch stretching {
        case .argon2id: KDF(name: stretching.rawValue, salt: Data(salt).base64EncodedString(), opslimit: argon2Ops, memlimit: argon2Memory)
        case .pbkdf2: KDF(name: stretching.rawValue, salt: Data(salt).base64EncodedString(), iterations: max(iterations, minimumIterations))
        }
        var backup = KeyBackup(format: format, version: 1, name: name, key: identity.publicKeyBase64, kdf: kdf,
                               cipher: Cipher(name: "aes-256-gcm", nonce: Data(nonce).base64EncodedString()), ciphertext: "", check: "")
        let key = try derive(passphrase: passphrase, kdf: kdf, salt: salt)
        backup.ciphertext = Data(try AESGCM.seal(identity.seed, key: key, nonce: nonce, aad: Array(backup.headerText.utf8))).base64EncodedString()
        backup.check = backup.digest
        return backup
    }

    /// Opens the backup. Errors say which: a damaged or edited file (`bad-field`), a passphrase
    /// that does not open it (`bad-signature`), a file asking for too little stretching.
    public func open(passphrase: String) throws(SignalingError) -> Identity {
        guard format == Self.format, version == 1 else {
            throw SignalingError(.badField, "not a meshnode key backup (format \(format.prefix(40)) v\(version))")
        }
        guard check == digest else {
            throw SignalingError(.badField, "the backup file was changed or damaged (its check does not match); use an untouched copy")
        }
        guard cipher.name == "aes-256-gcm", let nonce = Data(base64Encoded: cipher.nonce), nonce.count == 12,
              let salt = Data(base64Encoded: kdf.salt), salt.count >= 16, let sealed = Data(base64Encoded: ciphertext), sealed.count == 48,
              Identity.decodeKey(key) != nil else {
            throw SignalingError(.badField, "the backup file has a field of the wrong size or encoding")
        }
        let derived = try Self.derive(passphrase: passphrase, kdf: kdf, salt: Array(salt))
        guard let seed = AESGCM.open(Array(sealed), key: derived, nonce: Array(nonce), aad: Array(headerText.utf8)) else {
            throw SignalingError(.badSignature, "wrong passphrase: it does not open this backup")
        }
        let identity = try Identity(seed: seed)
        guard identity.publicKeyBase64 == key else {
            throw SignalingError(.badField, "the backup holds another key than it names; the file was changed")
        }
        return identity
    }

    /// The JSON text of the file (keys sorted, pretty).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self) + "\n"
    }

    /// Reads a backup file's JSON.
    public static func parse(_ data: Data) throws(SignalingError) -> KeyBackup {
        do {
            return try JSONDecoder().decode(KeyBackup.self, from: data)
        } catch {
            throw SignalingError(.badField, "not a meshnode key backup: the file is not the JSON of one (or a field is missing)")
        }
    }

    var digest: String {
        var hash = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        let text = Array((headerText + "\n" + ciphertext).utf8)
        Sodium.ready()
        _ = crypto_hash_sha256(&hash, text, UInt64(text.count))
        return hash.map { String(format: "%02x", $0) }.joined()
    }

    /// 32 bytes from the passphrase (its UTF-8, NFC as typed) by the file's KDF, within bounds:
    /// at least ``minimumIterations`` and at most 10 million PBKDF2 iterations; Argon2id at least
    /// libsodium's interactive limits and at most 1 GiB.
    static func derive(passphrase: String, kdf: KDF, salt: [UInt8]) throws(SignalingError) -> [UInt8] {
        // A non-empty array even for "", so that the C calls get a valid pointer.
        let secret = passphrase.precomposedStringWithCanonicalMapping.utf8.map { CChar(bitPattern: $0) }
        let secretLength = secret.count
        let pass = secret + [0]
        var out = [UInt8](repeating: 0, count: 32)
        switch kdf.name {
        case Stretching.pbkdf2.rawValue:
            guard let iterations = kdf.iterations, (minimumIterations...10_000_000).contains(iterations) else {
                throw SignalingError(.badField, "the backup asks for \(kdf.iterations ?? 0) PBKDF2 iterations; at least \(minimumIterations) and at most 10,000,000 are accepted")
            }
            let ok = PKCS5_PBKDF2_HMAC(pass, Int32(secretLength), salt, Int32(salt.count), Int32(iterations), EVP_sha256(), 32, &out)
            guard ok == 1 else { throw SignalingError(.internalError, "PBKDF2 failed") }
        case Stretching.argon2id.rawValue:
            guard let ops = kdf.opslimit, let memory = kdf.memlimit, ops >= Int(crypto_pwhash_OPSLIMIT_INTERACTIVE), ops <= 20,
                  memory >= Int(crypto_pwhash_MEMLIMIT_INTERACTIVE), memory <= 1 << 30, salt.count == Int(crypto_pwhash_SALTBYTES) else {
                throw SignalingError(.badField, "the backup's Argon2id limits are out of range (opslimit 2–20, memlimit 64 MiB–1 GiB, 16-byte salt)")
            }
            Sodium.ready()
            let result = crypto_pwhash(&out, 32, pass, UInt64(secretLength), salt, UInt64(ops), Int(memory), crypto_pwhash_ALG_ARGON2ID13)
            guard result == 0 else { throw SignalingError(.internalError, "Argon2id could not get \(memory >> 20) MiB of memory") }
        default:
            throw SignalingError(.badField, "unknown key derivation '\(kdf.name.prefix(40))'; this version reads pbkdf2-sha256 and argon2id")
        }
        return out
    }
}

/// AES-256-GCM (NIST SP 800-38D) with OpenSSL's EVP interface, 12-byte nonce, 16-byte tag
/// appended to the ciphertext as WebCrypto does.
enum AESGCM {
    static func seal(_ plain: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) throws(SignalingError) -> [UInt8] {
        guard let ctx = EVP_CIPHER_CTX_new() else { throw SignalingError(.internalError, "no cipher context") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: plain.count + 16)
        var length: Int32 = 0
        var total: Int32 = 0
        guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1,
              EVP_EncryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1,
              EVP_EncryptUpdate(ctx, &out, &length, plain, Int32(plain.count)) == 1 else {
            throw SignalingError(.internalError, "AES-GCM encryption failed")
        }
        total = length
        let finished = out.withUnsafeMutableBufferPointer { buffer in
            EVP_EncryptFinal_ex(ctx, buffer.baseAddress! + Int(total), &length) == 1
                && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, buffer.baseAddress! + plain.count) == 1
        }
        guard finished else { throw SignalingError(.internalError, "AES-GCM encryption failed") }
        return out
    }

    /// The plaintext, or nil when the tag does not verify (wrong key, or changed data).
    static func open(_ sealed: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8]) -> [UInt8]? {
        guard sealed.count >= 16, let ctx = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let body = Array(sealed.dropLast(16))
        var tag = Array(sealed.suffix(16))
        var out = [UInt8](repeating: 0, count: body.count + 16)
        var length: Int32 = 0
        guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1,
              EVP_DecryptUpdate(ctx, nil, &length, aad, Int32(aad.count)) == 1,
              EVP_DecryptUpdate(ctx, &out, &length, body, Int32(body.count)) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { return nil }
        let produced = Int(length)
        let ok = out.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + produced, &length) == 1 }
        return ok ? Array(out.prefix(body.count)) : nil
    }
}
