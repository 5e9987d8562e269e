import Foundation

/// Which web pages may open the signaling WebSocket (RFC 6455 §10.2: a server that serves
/// browsers checks `Origin`). Browsers always send `Origin` on a WebSocket handshake; other
/// clients (the CLI, node links) send none, or a `ws://` one, and are not affected. By default only the page's own
/// origin is allowed, wherever it is served from: the `Origin`'s host and port must be the
/// `Host` the browser sent the request to. A page on another site cannot make a visitor's
/// browser talk to the node.
public struct OriginPolicy: Sendable, Equatable {
    /// Further origins (`scheme://host:port`, normalised) allowed besides the page's own.
    public let allowed: Set<String>
    /// `*` in the list: any origin.
    public let allowsAny: Bool

    /// - Parameter allowed: origins such as `https://app.example.com`, or `*` for any.
    public init(allowed: [String] = []) {
        allowsAny = allowed.contains("*")
        self.allowed = Set(allowed.compactMap(Self.normalise))
    }

    /// Why a handshake with this `Origin` header to this `Host` is refused, or nil.
    ///
    /// Only what a browser sends is checked: a web origin (`http`, `https`) or an opaque one
    /// (`null`). Other clients may send what they like (Hummingbird's WebSocket client sends
    /// `ws://HOST`); no browser sends a `ws` origin, and the check defends browsers only.
    public func refusal(origin header: String?, host: String?) -> String? {
        guard let header, !allowsAny else { return nil }
        let origins = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        for origin in origins where !origin.lowercased().hasPrefix("ws://") && !origin.lowercased().hasPrefix("wss://") {
            if let refusal = refusal(browserOrigin: origin, host: host) { return refusal }
        }
        return nil
    }

    private func refusal(browserOrigin origin: String, host: String?) -> String? {
        guard let normalised = Self.normalise(origin), let url = URL(string: normalised), let scheme = url.scheme else {
            return "origin '\(origin.prefix(80))' may not open this node's WebSocket"
        }
        if allowed.contains(normalised) { return nil }
        // Same origin: the Host header without a port means the scheme's default port.
        if let host, let port = url.port {
            let defaultPort = scheme == "https" ? 443 : 80
            let hostAuthority = LoginBody.authority(host) ?? LoginBody.authority(host + ":\(defaultPort)")
            if hostAuthority == LoginBody.authority(host: url.host ?? "", port: port) { return nil }
        }
        return "origin '\(origin.prefix(80))' is not this node's page (host \(host?.prefix(80) ?? "none")); see allow-origin"
    }

    /// `scheme://host:port` with the port always written, or nil for an opaque origin (`null`).
    static func normalise(_ text: String) -> String? {
        guard let url = URL(string: text.trimmingCharacters(in: .whitespaces)), let scheme = url.scheme?.lowercased(),
              ["http", "https"].contains(scheme), let host = url.host, !host.isEmpty else { return nil }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        return "\(scheme)://" + LoginBody.authority(host: host, port: port)
    }
}
