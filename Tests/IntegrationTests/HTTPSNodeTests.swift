import Foundation
import NIOSSL
import Signaling
import Testing
import TestSupport

/// HTTPS and WSS on the web port (issue 13, item 1): a node with a certificate from a test CA
/// serves the page and logins over TLS to a client that trusts the CA, and to no other; SIGHUP
/// swaps the certificate for new connections while WebSockets stay up; without files the node
/// keeps a self-signed certificate of its own in its data directory.
@Suite(.serialized, .timeLimit(.minutes(2))) struct HTTPSNodeTests {
    /// `curl` with the CA (or without any: the system's roots); returns its exit status and the
    /// response's head and body.
    func curl(_ url: String, ca: String?) async throws -> (status: Int32?, output: String) {
        try await Subprocess.run("/usr/bin/curl", ["-sS", "-D", "-", "--max-time", "10"] + (ca.map { ["--cacert", $0] } ?? []) + [url])
    }

    /// A client that trusts only the test CA.
    func trusting(_ ca: TestCertificateAuthority) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(ca.caFile)
        return configuration
    }

    func wssURL(_ node: MeshNodeServer) -> String { "wss://127.0.0.1:\(node.httpPort)/ws" }

    /// The fingerprint the banner printed.
    func bannerFingerprint(_ node: MeshNodeServer) throws -> String {
        guard let line = node.process.output.split(separator: "\n").first(where: { $0.contains("tls sha256:") }) else {
            throw TestFailure("no tls sha256 line in the banner:\n\(node.process.output)")
        }
        return String(line.split(separator: " ").last!)
    }

    func ping(_ socket: RawSignalingSocket) async throws -> Bool {
        socket.send(SignalingMessage(id: "p", from: "", to: SignalingProtocol.nodeAddress, payload: .ping))
        let reply = try await socket.next()
        if case .pong = reply.payload { return true }
        return false
    }

    @Test func pageAndLoginOverTLSForAClientThatTrustsTheCA() async throws {
        let ca = try await TestCertificateAuthority()
        let issued = try await ca.issue("node")
        let node = try await MeshNodeServer(["--https", "--tls-cert", issued.certificate, "--tls-key", issued.key], bind: ["127.0.0.1"])
        defer { node.stop() }
        #expect(node.process.output.contains("web page: https://127.0.0.1:\(node.httpPort)/"))
        let fingerprint = try await TestCertificateAuthority.fingerprint(ofPEM: issued.certificate)
        #expect(try bannerFingerprint(node) == fingerprint)

        // The page over https, with HSTS (RFC 6797) and a policy that allows WebSockets over TLS only.
        let page = try await curl("https://127.0.0.1:\(node.httpPort)/", ca: ca.caFile)
        #expect(page.status == 0)
        #expect(page.output.lowercased().contains("strict-transport-security: max-age=31536000"))
        #expect(page.output.contains("connect-src 'self' wss:;"))
        #expect(page.output.contains("<html"))
        // /status names the certificate's fingerprint.
        let status = try await curl("https://127.0.0.1:\(node.httpPort)/status", ca: ca.caFile)
        #expect(status.output.contains(fingerprint))

        // A login over wss.
        let alice = RawSignalingSocket(url: wssURL(node), tlsConfiguration: trusting(ca), serverName: "localhost")
        defer { alice.close() }
        let welcome = try await alice.login("alice", .generate())
        #expect(welcome.name == "alice")
        #expect(try await ping(alice))

        // A client that does not trust the test CA (the system's roots) is refused by its own TLS:
        // curl's 60 is "peer certificate cannot be authenticated with given CA certificates".
        let untrusted = try await curl("https://127.0.0.1:\(node.httpPort)/", ca: nil)
        #expect(untrusted.status == 60)
        let stranger = RawSignalingSocket(url: wssURL(node), serverName: "localhost")
        await #expect(throws: TestTimeout.self) { _ = try await stranger.next(timeout: .seconds(2)) }
        #expect(await stranger.isClosed)
        // Nothing in clear text on the port: a ws:// client gets no challenge.
        let plain = RawSignalingSocket(url: "ws://127.0.0.1:\(node.httpPort)/ws")
        await #expect(throws: TestTimeout.self) { _ = try await plain.next(timeout: .seconds(2)) }
        let http = try await curl("http://127.0.0.1:\(node.httpPort)/", ca: nil)
        #expect(http.status != 0)
    }

    @Test func sighupSwapsTheCertificateWhileWebSocketsStayUp() async throws {
        let ca = try await TestCertificateAuthority()
        let first = try await ca.issue("first")
        let second = try await ca.issue("second")
        // The node reads the files at these paths; the test overwrites them as certbot would.
        let (certificate, key) = try ca.live(first)
        let node = try await MeshNodeServer(["--https", "--tls-cert", certificate, "--tls-key", key], bind: ["127.0.0.1"])
        defer { node.stop() }
        let firstFingerprint = try await TestCertificateAuthority.fingerprint(ofPEM: first.certificate)
        let secondFingerprint = try await TestCertificateAuthority.fingerprint(ofPEM: second.certificate)
        #expect(try await TestCertificateAuthority.presentedFingerprint(port: node.httpPort) == firstFingerprint)
        // TURN over TLS (turns:) has the same certificate, and is renewed with it.
        #expect(try await TestCertificateAuthority.presentedFingerprint(port: node.tlsPort) == firstFingerprint)

        let alice = RawSignalingSocket(url: wssURL(node), tlsConfiguration: trusting(ca), serverName: "localhost")
        defer { alice.close() }
        try await alice.login("alice", .generate())

        try ca.renew((certificate, key), with: second)
        node.process.terminate(SIGHUP)
        try await waitUntil("the node presents the second certificate", interval: .milliseconds(50)) {
            try await TestCertificateAuthority.presentedFingerprint(port: node.httpPort) == secondFingerprint
        }
        #expect(try await TestCertificateAuthority.presentedFingerprint(port: node.tlsPort) == secondFingerprint)
        // The WebSocket from before the reload is still up and answered.
        #expect(node.process.isRunning)
        #expect(await !alice.isClosed)
        #expect(try await ping(alice))
        // New logins work with the new certificate, and /status names it.
        let bob = RawSignalingSocket(url: wssURL(node), tlsConfiguration: trusting(ca), serverName: "localhost")
        defer { bob.close() }
        #expect(try await bob.login("bob", .generate()).name == "bob")
        #expect(try await curl("https://127.0.0.1:\(node.httpPort)/status", ca: ca.caFile).output.contains(secondFingerprint))

        // A broken file on reload (a renewal caught half-written): the node keeps the certificate it has.
        try "not a certificate\n".write(toFile: certificate, atomically: true, encoding: .utf8)
        node.process.terminate(SIGHUP)
        try await node.process.waitForOutput("web certificate not reloaded")
        try await node.process.waitForOutput("TURN TLS certificate not reloaded")
        #expect(try await TestCertificateAuthority.presentedFingerprint(port: node.httpPort) == secondFingerprint)
        #expect(try await TestCertificateAuthority.presentedFingerprint(port: node.tlsPort) == secondFingerprint)
        #expect(try await ping(alice))
    }

    @Test func selfSignedCertificateIsKeptInTheDataDirectoryAndSharedWithTURN() async throws {
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-data-\(UUID().uuidString)").path
        let node = try await MeshNodeServer(["--https", "--data-dir", data], bind: ["127.0.0.1"])
        let fingerprint = try bannerFingerprint(node)
        #expect(try await TestCertificateAuthority.presentedFingerprint(port: node.httpPort) == fingerprint)
        // TURN over TLS presents the same certificate.
        #expect(try await TestCertificateAuthority.presentedFingerprint(port: node.tlsPort) == fingerprint)
        let mode = try FileManager.default.attributesOfItem(atPath: data + "/web-tls-key.pem")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        node.stop()

        // A restart keeps it: a fingerprint a user compared once stays valid.
        let again = try await MeshNodeServer(["--https", "--data-dir", data], bind: ["127.0.0.1"])
        defer { again.stop() }
        #expect(try bannerFingerprint(again) == fingerprint)
    }

    @Test func plainHTTPStaysTheDefault() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let page = try await curl("http://127.0.0.1:\(node.httpPort)/", ca: nil)
        #expect(page.status == 0)
        // HSTS over plain HTTP would mean nothing (RFC 6797 §7.2) and is not sent.
        #expect(!page.output.lowercased().contains("strict-transport-security"))
        #expect(!node.process.output.contains("tls sha256"))
    }
}
