import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import STUN

/// How a link over `wss://` checks the other node's TLS certificate (docs/mesh.md "Links over
/// wss"): against the system's CAs, the CAs of a file (`--link-ca`), or, with
/// `#sha256=HEX` at the end of the link URL, exactly the certificate with that SHA-256
/// fingerprint (a node with a self-signed certificate). The node-key pinning of the link
/// handshake applies on top of any of them: TLS says who holds the address, the key who the node is.
public struct LinkTLS: Sendable, Equatable {
    /// PEM file of the CAs that vouch for linked nodes; nil: the system's.
    public var caFile: String?

    public init(caFile: String? = nil) {
        self.caFile = caFile
    }

    /// A link URL without its fragment, and the pin the fragment names (32 bytes), if any.
    /// A fragment that is not `sha256=` and 64 hex digits (colons allowed) is refused.
    public static func split(_ url: String) throws(SignalingError) -> (url: String, pin: [UInt8]?) {
        guard let hash = url.firstIndex(of: "#") else { return (url, nil) }
        let fragment = url[url.index(after: hash)...]
        guard fragment.lowercased().hasPrefix("sha256=") else {
            throw SignalingError(.badField, "link \(url): the fragment must be #sha256=HEX, the pinned certificate's fingerprint")
        }
        let hex = fragment.dropFirst(7).filter { $0 != ":" }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex, bytes.count <= 32 {
            let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) ?? hex.endIndex
            guard let byte = UInt8(hex[index..<next], radix: 16), hex.distance(from: index, to: next) == 2 else { break }
            bytes.append(byte)
            index = next
        }
        guard bytes.count == 32, index == hex.endIndex else {
            throw SignalingError(.badField, "link \(url): #sha256= needs the 64 hex digits of a SHA-256 fingerprint")
        }
        guard url.lowercased().hasPrefix("wss://") else {
            throw SignalingError(.badField, "link \(url): a pinned certificate needs a wss:// URL")
        }
        return (String(url[..<hash]), bytes)
    }

    /// `AB:CD:…` (as `openssl x509 -fingerprint -sha256` and the node's banner print it).
    public static func fingerprintText(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02X", $0) }.joined(separator: ":")
    }

    /// The TLS configuration and server name for one connection to `host:port`. With a pin,
    /// the certificate the node presents now is read first and must have the pinned
    /// fingerprint; the connection then trusts that certificate alone, so a different one on
    /// the real connection fails its handshake too.
    func configuration(host: String, port: Int, pin: [UInt8]?) async throws -> (tls: TLSConfiguration, serverName: String?) {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        let isAddress = (try? SocketAddress(ipAddress: host, port: port)) != nil
        guard let pin else {
            // SNI carries names only (RFC 6066 §3), and a CA vouches for names: an address needs a pin.
            guard !isAddress else {
                throw SignalingError(.badField, "link to \(host): a CA-checked wss:// link needs the node's DNS name; for an address, pin its certificate with #sha256=HEX")
            }
            if let caFile { tls.trustRoots = .file(caFile) }
            return (tls, nil)
        }
        // With a pin the fingerprint is the check; no name needs to match.
        let serverName = isAddress ? nil : host
        let presented = try await Self.presentedCertificate(host: host, port: port, serverName: serverName)
        let fingerprint = Digest.sha256(try presented.toDERBytes())
        guard fingerprint == pin else {
            throw SignalingError(.forbidden, "the certificate of \(host):\(port) has SHA-256 \(Self.fingerprintText(fingerprint)), the link pins \(Self.fingerprintText(pin)): refusing the link")
        }
        tls.trustRoots = .certificates([presented])
        tls.certificateVerification = .noHostnameVerification
        // WSClient puts its server name into SNI, which takes no address (RFC 6066 §3); the
        // name is not checked here (the pin is), so a reserved name stands in (RFC 6761 §6.4).
        return (tls, serverName ?? "meshnode.invalid")
    }

    /// The leaf certificate a TLS server presents, read without verifying it.
    static func presentedCertificate(host: String, port: Int, serverName: String?) async throws -> NIOSSLCertificate {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        let context = try NIOSSLContext(configuration: tls)
        let group = MultiThreadedEventLoopGroup.singleton
        let handshake = group.any().makePromise(of: Void.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: handshake.futureResult.eventLoop)
                .connectTimeout(.seconds(10))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverName))
                        try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(promise: handshake))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            handshake.fail(error)
            throw error
        }
        defer { channel.close(promise: nil) }
        let deadline = channel.eventLoop.scheduleTask(in: .seconds(10)) {
            handshake.fail(SignalingError(.forbidden, "no TLS handshake with \(host):\(port) within 10 s"))
        }
        defer { deadline.cancel() }
        try await handshake.futureResult.get()
        guard let certificate = try await channel.nioSSL_peerCertificate().get() else {
            throw SignalingError(.forbidden, "\(host):\(port) presented no certificate")
        }
        return certificate
    }
}

/// Completes a promise when the TLS handshake is done, fails it when the connection ends first.
private final class HandshakeWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<Void>

    init(promise: EventLoopPromise<Void>) { self.promise = promise }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { promise.succeed(()) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(SignalingError(.forbidden, "the TLS connection closed before its handshake"))
        context.fireChannelInactive()
    }
}
