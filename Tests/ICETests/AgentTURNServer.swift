import Foundation
import ICE
#if canImport(Glibc)
import Glibc
import STUN
import TURNServer
#endif

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
    private let process: Process
    private let directory: URL

    private init(port: UInt16, tlsPort: UInt16?, process: Process, directory: URL) {
        self.port = port
        self.tlsPort = tlsPort
        self.process = process
        self.directory = directory
    }

    struct StartError: Error, CustomStringConvertible {
        var description: String
    }

    static func start(tls: Bool) async throws -> CoturnServer {
        let port = try freeLoopbackPort()
        var tlsPort: UInt16?
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("meshnode-turn-\(port)-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/turnserver")
        process.arguments = [
            "-n", "--log-file=stdout", "--no-cli",
            "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--listening-port=\(port)",
            "--lt-cred-mech", "--user=u:p", "--realm=meshnode",
            "--no-dtls", "--allow-loopback-peers",
            "--pidfile=\(directory.path)/turnserver.pid",
            "--userdb=\(directory.path)/turndb",
        ]
        if tls {
            let tls = try freeLoopbackPort()
            tlsPort = tls
            let (cert, key) = (directory.path + "/cert.pem", directory.path + "/key.pem")
            try runTool("/usr/bin/openssl", [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
            ])
            process.arguments! += ["--tls-listening-port=\(tls)", "--cert=\(cert)", "--pkey=\(key)"]
        } else {
            process.arguments!.append("--no-tls")
        }
        let log = FileHandle(forWritingAtPath: "/dev/null")
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let server = CoturnServer(port: port, tlsPort: tlsPort, process: process, directory: directory)
        // Ready when its TCP listeners (the UDP one shares the port) accept, at most 5 s.
        let deadline = ContinuousClock.now + .seconds(5)
        while !canConnectTCP(port: port) || !(tlsPort.map(canConnectTCP) ?? true) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                server.stop()
                throw StartError(description: "turnserver did not start listening on 127.0.0.1:\(port)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(100))  // UDP listener and relay threads
        return server
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            let deadline = ContinuousClock.now + .milliseconds(500)
            while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

private func runTool(_ path: String, _ arguments: [String]) throws {
    let tool = Process()
    tool.executableURL = URL(fileURLWithPath: path)
    tool.arguments = arguments
    let null = FileHandle(forWritingAtPath: "/dev/null")
    tool.standardOutput = null
    tool.standardError = null
    try tool.run()
    tool.waitUntilExit()
    guard tool.terminationStatus == 0 else {
        throw CoturnServer.StartError(description: "\(path) \(arguments.joined(separator: " ")) failed")
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 at the time of the call.
func freeLoopbackPort() throws -> UInt16 {
    for _ in 0..<20 {
        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(udp) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(udp, pointer, length) == 0 && getsockname(udp, pointer, &length) == 0
            }
        }
        guard bound else { continue }
        let port = UInt16(bigEndian: address.sin_port)
        let tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(tcp) }
        let tcpBound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(tcp, $0, length) == 0 }
        }
        if tcpBound { return port }
    }
    throw CoturnServer.StartError(description: "no free port on 127.0.0.1")
}

private func canConnectTCP(port: UInt16) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = port.bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}
