import Hummingbird
import NIOCore
import Signaling

/// The plain-HTTP listener of `http-redirect-port`: every request gets 301 to the same path
/// over HTTPS, and nothing else (no page, no `/ws`, no status). The host of the new URL is the
/// public host, else the `Host` the client sent when it is one of the node's own names
/// (``NodePublicIdentity/authorities``), else the node's address: never another host, so the
/// listener cannot be used to send a browser elsewhere (an open redirect). No HSTS header
/// here: RFC 6797 §7.2 forbids it over plain HTTP.
struct HTTPSRedirect: Sendable {
    let identity: NodePublicIdentity
    /// The HTTPS port (`http-port` with `https`).
    let httpsPort: Int
    /// The node's own `host:port` forms, computed once (a wildcard bind lists the interfaces).
    private let authorities: Set<String>

    init(identity: NodePublicIdentity, httpsPort: Int) {
        self.identity = identity
        self.httpsPort = httpsPort
        var own = identity
        own.httpPort = httpsPort
        authorities = own.authorities
    }

    var router: Router<BasicRequestContext> {
        let router = Router()
        let redirect = self
        router.on("**", method: .get) { request, _ in redirect.response(request) }
        router.on("**", method: .head) { request, _ in redirect.response(request) }
        router.on("/", method: .get) { request, _ in redirect.response(request) }
        router.on("/", method: .head) { request, _ in redirect.response(request) }
        return router
    }

    private func response(_ request: Request) -> Response {
        Response(status: .movedPermanently,
                 headers: [.location: location(host: request.head.authority, path: request.uri.path, query: request.uri.query),
                           .contentLength: "0"])
    }

    /// The `https://` URL for a request to `host` (its Host header) and `path`.
    func location(host: String?, path: String, query: String?) -> String {
        let chosen = identity.publicHost ?? own(host) ?? Self.host(ofAuthority: identity.nodeAddress)
        let bracketed = chosen.contains(":") ? "[\(chosen)]" : chosen
        // The path is appended to a fixed authority: `//evil.example/` stays a path here.
        let safePath = path.hasPrefix("/") ? path : "/" + path
        return "https://" + bracketed + (httpsPort == 443 ? "" : ":\(httpsPort)") + safePath + (query.map { $0.isEmpty ? "" : "?" + $0 } ?? "")
    }

    /// The host of a Host header when it names this node, else nil.
    private func own(_ header: String?) -> String? {
        guard let header, !header.isEmpty else { return nil }
        let host = Self.host(ofAuthority: header)
        let candidate = LoginBody.authority(host: host, port: httpsPort)
        return authorities.contains(candidate) ? host.lowercased() : nil
    }

    /// `host` of `host:port`, `[v6]:port` or `host`, without brackets.
    static func host(ofAuthority text: String) -> String {
        var host = text
        if host.hasPrefix("[") {
            host = String(host.dropFirst().prefix { $0 != "]" })
        } else if let colon = host.lastIndex(of: ":"), host.filter({ $0 == ":" }).count == 1 {
            host = String(host[..<colon])
        }
        return host
    }
}
