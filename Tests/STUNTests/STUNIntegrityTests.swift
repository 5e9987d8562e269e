import Foundation
import NIOCore
import Testing
@testable import STUN

/// MESSAGE-INTEGRITY-SHA256, USERHASH and PASSWORD-ALGORITHMS (RFC 8489 §14.4, §14.6, §14.11).
@Suite struct STUNIntegrityTests {
    @Test("MESSAGE-INTEGRITY-SHA256 verifies with the right key only, and survives a FINGERPRINT")
    func sha256Integrity() throws {
        var message = STUNMessage(type: STUNMessageType(.refresh, .request))
        message.append(.username, string: "alice")
        let key = LongTermCredentials.keySHA256(username: "alice", realm: "r", password: "p")
        let parsed = try STUNMessage(parsing: message.encode(integrity: key, algorithm: .sha256, fingerprint: true))
        #expect(parsed.has(.messageIntegritySHA256))
        #expect(!parsed.has(.messageIntegrity))
        #expect(parsed.verifyIntegrity(key: key))
        #expect(!parsed.verifyIntegrity(key: LongTermCredentials.key(username: "alice", realm: "r", password: "p")))
    }

    @Test("attributes after MESSAGE-INTEGRITY are ignored except MI-SHA256 and FINGERPRINT")
    func attributesAfterIntegrity() throws {
        var message = STUNMessage(type: STUNMessageType(.binding, .request))
        message.append(.username, string: "a")
        var bytes = message.encode(integrity: [1, 2, 3])
        // Append SOFTWARE after MESSAGE-INTEGRITY and fix the length.
        STUNMessage.writeAttribute(.software, ByteBuffer(string: "late"), into: &bytes)
        bytes.setInteger(UInt16(bytes.readableBytes - 20), at: 2)
        let parsed = try STUNMessage(parsing: bytes)
        #expect(parsed.software == nil)
        #expect(parsed.username == "a")
    }

    @Test("USERHASH is SHA-256 of username:realm")
    func userhash() {
        let hash = LongTermCredentials.userhash(username: "alice", realm: "example.org")
        #expect(hash.count == 32)
        #expect(hash == Digest.sha256(Array("alice:example.org".utf8)))
    }

    @Test("PASSWORD-ALGORITHMS round-trip with padded parameters; truncation is an error")
    func passwordAlgorithms() throws {
        var message = STUNMessage(type: STUNMessageType(.allocate, .errorResponse))
        let offered = [STUNPasswordAlgorithm.sha256, STUNPasswordAlgorithm(number: 9, parameters: [1, 2, 3]), .md5]
        message.appendPasswordAlgorithms(offered)
        message.appendPasswordAlgorithm(.sha256)
        let parsed = try STUNMessage(parsing: message.encode())
        #expect(try parsed.passwordAlgorithms() == offered)
        #expect(try parsed.passwordAlgorithm() == .sha256)
        var broken = STUNMessage(type: STUNMessageType(.allocate, .request))
        broken.append(.passwordAlgorithms, bytes: [0, 2, 0, 8, 1])
        #expect(throws: STUNError.self) { try STUNMessage(parsing: broken.encode()).passwordAlgorithms() }
    }

    @Test("TURN REST credentials: password is base64(HMAC-SHA1(secret, username))")
    func restCredentials() {
        // Computed independently: printf '1700000000:bob' | openssl dgst -sha1 -hmac s3cret -binary | base64
        #expect(TURNRESTCredentials.password(secret: "s3cret", username: "1700000000:bob") == Self.expectedREST)
        #expect(TURNRESTCredentials.expiry(ofUsername: "1700000000:bob") == 1_700_000_000)
        #expect(TURNRESTCredentials.expiry(ofUsername: "bob") == nil)
    }

    static let expectedREST = "iqOUFv+P824wi/aW3liW77QZa80="

    @Test("nonces expire and do not verify under another key")
    func nonces() {
        let issuer = NonceIssuer(lifetime: 10)
        let nonce = issuer.issue()
        #expect(issuer.isValid(nonce))
        #expect(!NonceIssuer(lifetime: 10).isValid(nonce))
        #expect(!issuer.isValid(nonce, now: .init(timeIntervalSinceNow: 11)))
        #expect(!issuer.isValid("garbage"))
    }
}
