import Foundation
import TestSupport

/// A certificate authority of the test's own, made with the openssl CLI: it issues server
/// certificates for loopback (SAN IP:127.0.0.1, DNS:localhost) that a client trusting `caFile`
/// accepts and any other client refuses.
struct TestCertificateAuthority {
    let directory: String
    var caFile: String { directory + "/ca.pem" }
    private var caKey: String { directory + "/ca-key.pem" }

    init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshnode-ca-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await Self.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                "-keyout", caKey, "-out", caFile, "-days", "2", "-subj", "/CN=meshnode test CA",
                                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    }

    /// A server certificate for loopback issued by this CA; returns the chain file (leaf, then
    /// the CA: a full chain as certbot writes it) and the key file.
    /// Installs `issued` at fixed paths, as certbot's `live/` directory holds the current pair:
    /// the node is started with these paths, and ``renew(_:with:)`` overwrites them.
    func live(_ issued: (certificate: String, key: String)) throws -> (certificate: String, key: String) {
        let live = (certificate: directory + "/live-chain.pem", key: directory + "/live-key.pem")
        try renew(live, with: issued)
        return live
    }

    /// A renewal: the files at `live` replaced by `issued` (the node is told with SIGHUP).
    func renew(_ live: (certificate: String, key: String), with issued: (certificate: String, key: String)) throws {
        for (source, target) in [(issued.certificate, live.certificate), (issued.key, live.key)] {
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: source, toPath: target)
        }
    }

    func issue(_ name: String) async throws -> (certificate: String, key: String) {
        let key = directory + "/\(name)-key.pem"
        let request = directory + "/\(name).csr"
        let leaf = directory + "/\(name)-leaf.pem"
        let chain = directory + "/\(name)-chain.pem"
        let extensions = directory + "/\(name).ext"
        try "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n".write(toFile: extensions, atomically: true, encoding: .utf8)
        try await Self.openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                "-keyout", key, "-out", request, "-subj", "/CN=\(name)"])
        try await Self.openssl(["x509", "-req", "-in", request, "-CA", caFile, "-CAkey", caKey, "-CAcreateserial",
                                "-days", "2", "-extfile", extensions, "-out", leaf])
        try (String(contentsOfFile: leaf, encoding: .utf8) + String(contentsOfFile: caFile, encoding: .utf8))
            .write(toFile: chain, atomically: true, encoding: .utf8)
        return (chain, key)
    }

    /// `AB:CD:…`: SHA-256 of a PEM file's first certificate, as openssl prints it.
    static func fingerprint(ofPEM file: String) async throws -> String {
        let output = try await openssl(["x509", "-in", file, "-noout", "-fingerprint", "-sha256"])
        return try fingerprintValue(output)
    }

    /// The fingerprint of the certificate a TLS server at 127.0.0.1:`port` presents to a new
    /// connection (openssl s_client, no verification: it only reads the certificate).
    static func presentedFingerprint(port: Int) async throws -> String {
        let script = "openssl s_client -connect 127.0.0.1:\(port) </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
        let (status, output) = try await Subprocess.run("/bin/sh", ["-c", script])
        guard status == 0 else { throw TestFailure("s_client to port \(port) failed: \(output)") }
        return try fingerprintValue(output)
    }

    private static func fingerprintValue(_ output: String) throws -> String {
        guard let line = output.split(separator: "\n").first(where: { $0.contains("Fingerprint=") }),
              let value = line.split(separator: "=").last else { throw TestFailure("no fingerprint in: \(output)") }
        return String(value).trimmingCharacters(in: .whitespaces)
    }

    @discardableResult
    static func openssl(_ arguments: [String]) async throws -> String {
        let (status, output) = try await Subprocess.run(Subprocess.resolve("openssl"), arguments)
        guard status == 0 else { throw TestFailure("openssl \(arguments.joined(separator: " ")) failed: \(output)") }
        return output
    }
}
