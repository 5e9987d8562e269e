import Foundation
import ICE
import NIOCore
import TestSupport
import STUN
import TURNServer

/// A TURN server on 127.0.0.1 that a test allocates on. Start it with `startTestTURNServer()`:
/// our own `TURNServer`; coturn stays available as `CoturnServer` for cross-checks.
protocol TestTURNServer: Sendable {
    var host: String { get }
    var port: UInt16 { get }
    var username: String { get }
    var password: String { get }
    /// Port of the TURN-over-TLS listener (RFC 8656 §3.1), when started with TLS.
    var tlsPort: UInt16? { get }
    func stop()
}

/// Starts the TURN server the agent tests use: ours, in process, so libnice's TURN client
/// is tested against meshnode's server (UDP, TCP and TLS).
func startTestTURNServer(tls: Bool = false) async throws -> any TestTURNServer {
    try await MeshNodeTestTURNServer.start(tls: tls)
}

/// meshnode's `TURNServer` on 127.0.0.1 with user `u`/`p` and loopback peers allowed.
final class MeshNodeTestTURNServer: TestTURNServer {
    let host = "127.0.0.1"
    let port: UInt16
    let username = "u"
    let password = "p"
    let tlsPort: UInt16?
    private let server: TURNServer

    private init(server: TURNServer) {
        self.server = server
        port = UInt16(server.listeners.first { $0.transport == .udp }?.address.port ?? 0)
        tlsPort = server.listeners.first { $0.transport == .tls }.flatMap { $0.address.port.map(UInt16.init) }
    }

    static func start(tls: Bool) async throws -> MeshNodeTestTURNServer {
        var configuration = TURNServerConfiguration()
        configuration.bindAddresses = ["127.0.0.1"]
        configuration.port = 0
        configuration.tlsPort = tls ? 0 : nil
        configuration.users = ["u": "p"]
        configuration.realm = "meshnode"
        configuration.peerPolicy = PeerAddressPolicy(allow: [CIDR(string: "127.0.0.0/8")!])
        let low = Int.random(in: 30_000...44_000)
        configuration.relayPorts = low...(low + 199)
        let server = TURNServer(configuration: configuration)
        try await server.start()
        return MeshNodeTestTURNServer(server: server)
    }

    /// Stops in the background: tests call this from `defer`, and each server has ports of its own.
    func stop() {
        let server = self.server
        Task { await server.stop() }
    }
}

/// Debian's coturn `turnserver`, listening only on 127.0.0.1, long-term credentials
/// `u`/`p`, loopback peers allowed (the peers of these tests are on loopback).
final class CoturnServer: TestTURNServer {
    let host = "127.0.0.1"
    let port: UInt16
    let username = "u"
    let password = "p"
    let tlsPort: UInt16?
    private let process: Subprocess
    private let directory: TemporaryDirectory

    private init(port: UInt16, tlsPort: UInt16?, process: Subprocess, directory: TemporaryDirectory) {
        self.port = port
        self.tlsPort = tlsPort
        self.process = process
        self.directory = directory
    }

    static func start(tls: Bool) async throws -> CoturnServer {
        let port = try freeLoopbackPort()
        let directory = TemporaryDirectory("turn")
        var arguments = [
            "-n", "--log-file=stdout", "--no-cli",
            "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--listening-port=\(port)",
            "--lt-cred-mech", "--user=u:p", "--realm=meshnode",
            "--no-dtls", "--allow-loopback-peers",
            "--pidfile=\(directory.path)/turnserver.pid",
            "--userdb=\(directory.path)/turndb",
        ]
        var tlsPort: Int?
        if tls {
            let tls = try freeLoopbackPort()
            tlsPort = tls
            let (cert, key) = (directory.path + "/cert.pem", directory.path + "/key.pem")
            let openssl = try await Subprocess.run("openssl", [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
            ])
            guard openssl.status == 0 else { throw TestFailure("openssl req failed:\n\(openssl.output)") }
            arguments += ["--tls-listening-port=\(tls)", "--cert=\(cert)", "--pkey=\(key)"]
        } else {
            arguments.append("--no-tls")
        }
        let process = try Subprocess("turnserver", arguments, terminationGrace: .milliseconds(500))
        let server = CoturnServer(port: UInt16(port), tlsPort: tlsPort.map(UInt16.init), process: process, directory: directory)
        // Ready when its TCP listeners accept and its UDP listener answers a Binding request.
        let udp = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        try await waitUntil("turnserver to listen on 127.0.0.1:\(port):\n\(process.output)", interval: .milliseconds(50)) {
            guard process.isRunning else { throw TestFailure("turnserver exited:\n\(process.output)") }
            guard acceptsTCP(port: port), tlsPort.map({ acceptsTCP(port: $0) }) ?? true else { return false }
            return await STUNProbe.udp([udp], count: 1, timeout: .seconds(1)).first?.answered == true
        }
        return server
    }

    func stop() {
        process.stop()
    }
}
