import ICE
import TURNServer

/// The page a node serves at `/status` (and at `/` when the web page's files are missing):
/// what this node offers and how to use it.
struct NodeStatusPage: Sendable {
    let configuration: NodeConfiguration
    let turn: TURNServer
    /// With HTTPS: its certificate, whose current fingerprint the page shows.
    var webCertificate: WebCertificate? = nil

    /// The page is static HTML with an inline style and no script.
    static let contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    func html() -> String {
        let listeners = turn.listeners.map { "<li><code>\(escape(NodeReadiness.turnURL($0)))</code></li>" }.joined()
        let auth = [
            configuration.turn.users.isEmpty ? nil : "\(configuration.turn.users.count) static user(s)",
            configuration.turn.restSecret == nil ? nil : "TURN REST credentials (shared secret)",
        ].compactMap { $0 }.joined(separator: ", ")
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>meshnode</title>
        <style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}
        code{background:#f2f2f2;padding:0 .25rem;border-radius:3px}</style></head>
        <body><h1>meshnode</h1>
        <p>This node runs a STUN/TURN server (realm <code>\(escape(configuration.turn.realm))</code>).</p>
        <h2>STUN/TURN</h2><ul>\(listeners)</ul>
        <p>Credentials: \(auth.isEmpty ? "none configured: TURN allocations are refused, STUN works" : escape(auth)).</p>
        \(webCertificate.map { "<h2>HTTPS</h2><p>Web certificate SHA-256 fingerprint: <code>\(escape($0.fingerprint))</code></p>" } ?? "")
        <p>Metrics: <a href="/metrics">/metrics</a> (Prometheus text format). The calling page: <a href="/">/</a>.</p>
        </body></html>
        """
    }

    private func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
