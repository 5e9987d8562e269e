import Certificates
import Dispatch
import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import STUN
import Synchronization
import TURNServer

/// The web port's TLS identity (HTTPS and WSS): a certificate chain and key from PEM files,
/// swapped for a fresh read of the same files on ``reload()`` (SIGHUP, after a certbot renewal).
///
/// Each new connection takes the context current when it is accepted; connections already up
/// keep the one they shook hands with, so a reload drops no WebSocket and no call.
final class WebCertificate: Sendable {
    /// A loaded certificate: the context new connections use and the leaf's fingerprint.
    struct Loaded: Sendable {
        let context: NIOSSLContext
        /// SHA-256 of the leaf certificate's DER, `AB:CD:…` (as `openssl x509 -fingerprint -sha256`).
        let fingerprint: String
    }

    let certificatePath: String
    let keyPath: String
    private let current: Mutex<Loaded>

    /// Reads both files; an unreadable or mismatched pair is a `tls-cert` setting error.
    init(certificatePath: String, keyPath: String) throws {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        current = Mutex(try Self.load(certificatePath: certificatePath, keyPath: keyPath))
    }

    var context: NIOSSLContext { current.withLock { $0.context } }
    var fingerprint: String { current.withLock { $0.fingerprint } }

    /// Reads the files again; on failure the old certificate stays in use and the error is thrown.
    @discardableResult
    func reload() throws -> String {
        let loaded = try Self.load(certificatePath: certificatePath, keyPath: keyPath)
        current.withLock { $0 = loaded }
        return loaded.fingerprint
    }

    static func load(certificatePath: String, keyPath: String) throws -> Loaded {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw NodeConfigurationError(key: "tls-cert", reason: "cannot read a PEM certificate chain from \(certificatePath): \(error)")
        }
        guard let leaf = chain.first else {
            throw NodeConfigurationError(key: "tls-cert", reason: "\(certificatePath) holds no PEM certificate")
        }
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw NodeConfigurationError(key: "tls-key", reason: "cannot read a PEM private key from \(keyPath): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                      privateKey: .privateKey(key))
        // Browsers speak TLS 1.2 and 1.3; nothing older (RFC 8996 deprecates 1.0 and 1.1).
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        let context: NIOSSLContext
        do {
            // BoringSSL checks here that the key belongs to the leaf certificate.
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw NodeConfigurationError(key: "tls-key", reason: "\(keyPath) does not fit the certificate in \(certificatePath): \(error)")
        }
        return Loaded(context: context, fingerprint: try fingerprint(of: leaf))
    }

    /// `AB:CD:…`, SHA-256 over the certificate's DER.
    static func fingerprint(of certificate: NIOSSLCertificate) throws -> String {
        let digest = Digest.sha256(try certificate.toDERBytes())
        return digest.map { String(format: "%02X", $0) }.joined(separator: ":")
    }

    /// The paths of the node's own self-signed web certificate in `directory`, made on first
    /// start (and again when it has expired or expires within a week) and kept across restarts,
    /// so that a fingerprint a user checked once stays the same.
    /// The certificate names `dnsNames` and `ipAddresses` (NodePublicIdentity); when they change
    /// (a new public-host) a new one is made, its names kept beside it in `web-tls-names`.
    static func selfSigned(in directory: String, commonName: String, dnsNames: [String] = [], ipAddresses: [String] = [],
                           logger: Logger) throws -> (certificate: String, key: String) {
        let certificate = directory + "/web-tls-cert.pem"
        let key = directory + "/web-tls-key.pem"
        let namesFile = directory + "/web-tls-names"
        let names = (["CN:" + commonName] + dnsNames.map { "DNS:" + $0 } + ipAddresses.map { "IP:" + $0 }).joined(separator: "\n") + "\n"
        let files = FileManager.default
        if files.fileExists(atPath: certificate), files.fileExists(atPath: key),
           (try? String(contentsOfFile: namesFile, encoding: .utf8)) == names,
           let leaf = try? NIOSSLCertificate.fromPEMFile(certificate).first,
           leaf.notValidAfter > time(nil) + 7 * 86_400 {
            return (certificate, key)
        }
        do {
            try files.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let made = try SelfSignedCertificate(commonName: commonName, dnsNames: dnsNames, ipAddresses: ipAddresses, days: Self.selfSignedDays)
            // The key first and readable by the node's user only.
            try Data(made.privateKeyPEM.utf8).write(to: URL(fileURLWithPath: key), options: .atomic)
            try files.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
            try Data(made.certificatePEM.utf8).write(to: URL(fileURLWithPath: certificate), options: .atomic)
            try Data(names.utf8).write(to: URL(fileURLWithPath: namesFile), options: .atomic)
        } catch {
            throw NodeConfigurationError(key: "data-dir", reason: "cannot write a self-signed web certificate in \(directory): \(error)")
        }
        logger.notice("made a self-signed web certificate", metadata: ["file": "\(certificate)"])
        return (certificate, key)
    }

    /// A year: long enough that a pinned fingerprint does not change often.
    static let selfSignedDays = 365

    /// Reads the files again and says so in the log; a failed reload keeps the old certificate
    /// and says why.
    func reloadLogged(_ logger: Logger) {
        do {
            let fingerprint = try reload()
            logger.notice("reloaded the web certificate", metadata: ["sha256": "\(fingerprint)"])
        } catch {
            logger.error("web certificate not reloaded, the old one stays: \(error)")
        }
    }
}

/// Reloads the web certificate and TURN's TLS certificate on SIGHUP until the returned source is
/// cancelled; nil when neither reads files. A failed reload keeps the old certificate and says
/// why in the log.
func reloadOnHangup(web: WebCertificate?, turn: TURNServer, logger: Logger) -> (any DispatchSourceSignal)? {
    guard web != nil || turn.configuration.tlsCertificatePath != nil else { return nil }
    // The default action of SIGHUP ends the process: take it over.
    signal(SIGHUP, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
    source.setEventHandler {
        web?.reloadLogged(logger)
        do {
            try turn.reloadTLS()
        } catch {
            logger.error("TURN TLS certificate not reloaded, the old one stays: \(error)")
        }
    }
    source.resume()
    return source
}

/// A server child channel that puts TLS in front of another one (HTTP/1.1 with the WebSocket
/// upgrade), with the context current when the connection is accepted (``WebCertificate``).
struct ReloadableTLSChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base
    let certificate: WebCertificate

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let context = certificate.context
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
