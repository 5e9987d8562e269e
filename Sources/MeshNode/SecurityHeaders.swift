import Hummingbird

/// Headers every HTTP response of the node carries, so that the page cannot be framed, sniffed
/// into another type or made to run script from anywhere but the node itself.
struct SecurityHeaders<Context: RequestContext>: RouterMiddleware {
    /// The page's policy (CSP Level 3): its own scripts, styles and images only; WebSockets to
    /// any node (the page may log in at a node other than the one that served it); media from
    /// the camera and microphone; no plugins, no `<base>`, no framing (`frame-ancestors`).
    static var pagePolicy: String {
        [
            "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
            "media-src 'self' blob: mediastream:", "connect-src 'self' ws: wss:", "object-src 'none'",
            "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
        ].joined(separator: "; ")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        // A route with a stricter policy of its own (the status page) keeps it.
        if response.headers[.contentSecurityPolicy] == nil {
            response.headers[.contentSecurityPolicy] = Self.pagePolicy
        }
        response.headers[.init("X-Content-Type-Options")!] = "nosniff"
        response.headers[.init("Referrer-Policy")!] = "no-referrer"
        // For browsers without frame-ancestors.
        response.headers[.init("X-Frame-Options")!] = "DENY"
        return response
    }
}
