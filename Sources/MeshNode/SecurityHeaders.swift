import Hummingbird

/// Headers every HTTP response of the node carries, so that the page cannot be framed, sniffed
/// into another type or made to run script from anywhere but the node itself.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    /// Whether the node serves HTTPS: then browsers are told to come back over HTTPS only
    /// (HSTS) and the page may open WebSockets over TLS only.
    var strictTransport = false

    /// RFC 6797 §6.1: a year. No includeSubDomains: the node does not know what else its
    /// domain serves.
    static var strictTransportSecurity: String { "max-age=31536000" }

    /// The page's policy (CSP Level 3): its own scripts, styles and images only; WebSockets to
    /// any node (the page may log in at a node other than the one that served it); media from
    /// the camera and microphone; no plugins, no `<base>`, no framing (`frame-ancestors`).
    static var pagePolicy: String { policy(webSockets: "ws: wss:") }

    /// The page's policy over HTTPS: WebSockets over TLS only (a page from an https origin may
    /// not open ws: anyway, mixed content; this says so in the policy too).
    static var securePagePolicy: String { policy(webSockets: "wss:") }

    private static func policy(webSockets: String) -> String {
        [
            "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
            "media-src 'self' blob: mediastream:", "connect-src 'self' \(webSockets)", "object-src 'none'",
            "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
        ].joined(separator: "; ")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        // A route with a stricter policy of its own (the status page) keeps it.
        if response.headers[.contentSecurityPolicy] == nil {
            response.headers[.contentSecurityPolicy] = strictTransport ? Self.securePagePolicy : Self.pagePolicy
        }
        // RFC 6797 §7.2: only over a secure transport; a browser ignores it over plain HTTP.
        if strictTransport {
            response.headers[.init("Strict-Transport-Security")!] = Self.strictTransportSecurity
        }
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        // For browsers without frame-ancestors.
        response.headers[.init("X-Frame-Options")!] = "DENY"
        return response
    }
}
