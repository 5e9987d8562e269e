import Foundation
import NIOCore
import Signaling
import Testing
@testable import MeshNode

/// Issue 15, finding 9 at the node's settings: secrets from files, the store's bounds, the
/// addresses a login may name, who reads `/status`, `/metrics` and `/mesh`.
@Suite struct TrustSettingsTests {
    func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-secret-\(UUID().uuidString)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func secretsComeFromFilesInsteadOfTheCommandLine() throws {
        let secret = try file("s3cr3t\n")
        let users = try file("# static users\nalice:one\n\nbob:t:wo\n")
        let token = try file("tok\n")
        defer { for path in [secret, users, token] { try? FileManager.default.removeItem(atPath: path) } }
        var settings = NodeSettings()
        settings.turnSecretFile = secret
        settings.userFile = users
        settings.statusTokenFile = token
        let configuration = try NodeConfiguration(settings)
        #expect(configuration.turn.restSecret == "s3cr3t")
        #expect(configuration.turn.users == ["alice": "one", "bob": "t:wo"])
        #expect(configuration.status == StatusAccess(mode: .local, token: "tok"))

        settings.turnSecret = "also"
        let both = #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(settings) }
        #expect(both?.key == "turn-secret-file")
        var missing = NodeSettings()
        missing.turnSecretFile = "/nonexistent/secret"
        let unreadable = #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(missing) }
        #expect(unreadable?.key == "turn-secret-file")
        let empty = try file("\n")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        var blank = NodeSettings()
        blank.statusTokenFile = empty
        let nothing = #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(blank) }
        #expect(nothing?.key == "status-token-file")
    }

    @Test func storeBoundsAndRoomRuleAreSettings() throws {
        let settings = try NodeSettings.parse(yaml: """
            store-max-messages: 10
            store-max-bytes: 100000
            recipient-max-messages: 3
            recipient-max-bytes: 70000
            room-max-messages: 5
            room-max-bytes: 80000
            room-max-members: 4
            store-max-rooms: 6
            member-max-rooms: 2
            store-max-names: 9
            message-expiry: 2
            name-expiry: 90
            store-kept-ids: 500
            room-rule: invite
            public-address: [Meet.Example.org:443]
            allow-origin: [https://app.example]
            status-access: public
            """)
        let signaling = try NodeConfiguration(settings).signaling
        var expected = StoreLimits()
        (expected.messages, expected.bytes, expected.recipientMessages, expected.recipientBytes) = (10, 100_000, 3, 70_000)
        (expected.roomMessages, expected.roomBytes, expected.roomMembers, expected.rooms) = (5, 80_000, 4, 6)
        (expected.memberRooms, expected.names, expected.expiry, expected.nameExpiry) = (2, 9, 2 * 86_400, 90 * 86_400)
        expected.deliveredKept = 500
        #expect(signaling.storeLimits == expected)
        #expect(signaling.roomRule == .invite)
        #expect(signaling.publicAddresses == ["meet.example.org:443"])
        #expect(signaling.allowedOrigins == ["https://app.example"])
        #expect(try NodeConfiguration(settings).status.mode == .public)
        let defaults = try NodeConfiguration(NodeSettings())
        #expect(defaults.signaling.storeLimits == StoreLimits() && defaults.signaling.roomRule == .open)
        #expect(defaults.status == StatusAccess(mode: .local, token: nil))
    }

    @Test("bad trust settings name their key", arguments: [
        ("room-rule: closed", "room-rule"), ("status-access: everyone", "status-access"), ("public-address: [example.org]", "public-address"),
        ("allow-origin: [example.org]", "allow-origin"), ("message-expiry: 0", "message-expiry"), ("store-max-bytes: 10", "store-max-bytes"),
    ])
    func rejects(yaml: String, key: String) throws {
        let error = #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(NodeSettings.parse(yaml: yaml)) }
        #expect(error?.key == key)
    }

    /// The addresses a login may name: the bind address with the HTTP port, localhost for a
    /// loopback bind, every interface for a wildcard, and the configured public ones.
    @Test func loginAuthoritiesAreTheNodesOwnAddresses() throws {
        let loopback = NodePublicIdentity(publicHost: nil, externalAddresses: [], bindAddresses: ["127.0.0.1", "::1"], httpPort: 8080, publicAddresses: []).authorities
        #expect(loopback == ["127.0.0.1:8080", "[::1]:8080", "localhost:8080"])
        let specific = NodePublicIdentity(publicHost: nil, externalAddresses: [], bindAddresses: ["192.0.2.7"], httpPort: 9000,
                                          publicAddresses: ["meet.example.org:443"]).authorities
        #expect(specific == ["192.0.2.7:9000", "meet.example.org:443"])
        let wildcard = NodePublicIdentity(publicHost: nil, externalAddresses: [], bindAddresses: ["0.0.0.0"], httpPort: 8080, publicAddresses: []).authorities
        #expect(wildcard.contains("127.0.0.1:8080") && wildcard.contains("localhost:8080"))
        let interfaces = ((try? System.enumerateDevices()) ?? []).compactMap { $0.address?.ipAddress }.filter { $0.contains(".") }
        for address in interfaces { #expect(wildcard.contains("\(address):8080"), "\(address)") }
    }

    /// `/status`, `/metrics`, `/mesh`: this host by default; a stranger gets 403, or 401 when a
    /// token exists, and the token opens them; `off` closes them for everyone.
    @Test func statusRoutesAreForThisHostOrTheTokenHolder() throws {
        let local: Set<String> = ["192.0.2.7"]
        let stranger = try SocketAddress(ipAddress: "198.51.100.9", port: 40_000)
        let sameHost = try SocketAddress(ipAddress: "192.0.2.7", port: 40_000)
        let loopback = try SocketAddress(ipAddress: "::1", port: 40_000)
        let mapped = try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 40_000)
        let byDefault = StatusAccess()
        #expect(byDefault.refusal(remote: stranger, authorization: nil, localAddresses: local)?.0 == .forbidden)
        for address in [sameHost, loopback, mapped] {
            #expect(byDefault.refusal(remote: address, authorization: nil, localAddresses: local) == nil, "\(address)")
        }
        // Through a reverse proxy on this host: the proxy is local, its client is not.
        #expect(byDefault.refusal(remote: loopback, authorization: nil, forwarded: true, localAddresses: local)?.0 == .forbidden)
        let withToken = StatusAccess(mode: .local, token: "tok")
        #expect(withToken.refusal(remote: stranger, authorization: nil, localAddresses: local)?.0 == .unauthorized)
        #expect(withToken.refusal(remote: stranger, authorization: "Bearer wrong", localAddresses: local)?.0 == .unauthorized)
        #expect(withToken.refusal(remote: stranger, authorization: "Bearer tokX", localAddresses: local)?.0 == .unauthorized)
        #expect(withToken.refusal(remote: stranger, authorization: "Bearer tok", localAddresses: local) == nil)
        #expect(StatusAccess(mode: .public).refusal(remote: stranger, authorization: nil, localAddresses: local) == nil)
        #expect(StatusAccess(mode: .off, token: "tok").refusal(remote: loopback, authorization: "Bearer tok", localAddresses: local)?.0 == .notFound)
    }
}
