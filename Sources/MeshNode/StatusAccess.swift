import Foundation
import Hummingbird
import NIOCore

/// Who may read what the node tells about itself: `/status` (listeners, credentials in use),
/// `/metrics` (load, traffic) and `/mesh` (the nodes it knows, their addresses, its links).
/// By default only this host (`local`): a client on loopback or on one of this host's own
/// addresses, which is where `meshnode status` and the testnet read them from. A bearer token
/// (`status-token-file`) opens them from elsewhere; `public` to everyone, `off` to no one.
public struct StatusAccess: Sendable, Equatable {
    /// `status-access`.
    public enum Mode: String, Sendable, CaseIterable {
        case local, `public`, off
    }

    public var mode: Mode
    /// The bearer token that opens the routes from anywhere (unless `off`).
    public var token: String?

    public init(mode: Mode = .local, token: String? = nil) {
        self.mode = mode
        self.token = token
    }

    /// The routes this guards.
    static let paths: Set<String> = ["/status", "/metrics", "/mesh"]

    /// Why a request from `remote` with `authorization` is refused (an HTTP status and a text),
    /// or nil when it may read the route. `localAddresses` are this host's interface addresses.
    /// A request a reverse proxy `forwarded` (it names the client in `Forwarded` or
    /// `X-Forwarded-For`, RFC 7239) is not local, though the proxy runs on this host.
    func refusal(remote: SocketAddress?, authorization: String?, forwarded: Bool = false,
                 localAddresses: Set<String>) -> (HTTPResponse.Status, String)? {
        switch mode {
        case .off:
            return (.notFound, "not found\n")
        case .public:
            return nil
        case .local:
            if !forwarded, let ip = remote?.ipAddress, Self.isLocal(ip, localAddresses: localAddresses) { return nil }
            if let token, let authorization, Self.matches(authorization: authorization, token: token) { return nil }
            return (token == nil ? .forbidden : .unauthorized,
                    "this node shows /status, /metrics and /mesh to clients on its own host"
                        + (token == nil ? " only (status-access)\n" : " or with its bearer token (status-token-file)\n"))
        }
    }

    /// Loopback, or one of this host's own addresses (also written IPv4-mapped).
    static func isLocal(_ ip: String, localAddresses: Set<String>) -> Bool {
        var address = ip.lowercased()
        if address.hasPrefix("::ffff:"), address.contains(".") { address = String(address.dropFirst(7)) }
        return address.hasPrefix("127.") || address == "::1" || localAddresses.contains(address)
    }

    /// `Bearer TOKEN`, compared in constant time.
    static func matches(authorization: String, token: String) -> Bool {
        let prefix = "bearer "
        guard authorization.lowercased().hasPrefix(prefix) else { return false }
        let given = Array(authorization.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces).utf8)
        let expected = Array(token.utf8)
        guard given.count == expected.count else { return false }
        return zip(given, expected).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// This host's interface addresses, lower case.
    static func hostAddresses() -> Set<String> {
        Set(((try? System.enumerateDevices()) ?? []).compactMap { $0.address?.ipAddress?.lowercased() })
    }
}

/// Applies ``StatusAccess`` to its routes (and to `/` when the status page stands there).
struct StatusAccessMiddleware: RouterMiddleware {
    let access: StatusAccess
    let statusAtRoot: Bool
    let localAddresses: Set<String>

    init(access: StatusAccess, statusAtRoot: Bool) {
        self.access = access
        self.statusAtRoot = statusAtRoot
        localAddresses = StatusAccess.hostAddresses()
    }

    func handle(_ request: Request, context: NodeRequestContext,
                next: (Request, NodeRequestContext) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard StatusAccess.paths.contains(path) || (statusAtRoot && path == "/") else { return try await next(request, context) }
        let forwarded = request.headers[.init("Forwarded")!] != nil || request.headers[.init("X-Forwarded-For")!] != nil
        guard let (status, text) = access.refusal(remote: context.remoteAddress, authorization: request.headers[.authorization],
                                                  forwarded: forwarded, localAddresses: localAddresses) else {
            return try await next(request, context)
        }
        var headers: HTTPFields = [.contentType: "text/plain; charset=utf-8"]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"meshnode\"" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
