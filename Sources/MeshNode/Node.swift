import Foundation
import Hummingbird
import ICE
import Logging
import MeshCore
import NIOCore
import HummingbirdCore
import HummingbirdWebSocket
import ServiceLifecycle
import Signaling
import Synchronization
import TURNServer
import Codecs

/// A meshnode node: STUN/TURN server, HTTP (web page, `/metrics`) and, later, signaling and
/// links, run as one `ServiceGroup` that stops gracefully on SIGTERM and SIGINT.
public struct Node: Sendable {
    public let configuration: NodeConfiguration
    public let logger: Logger

    public init(configuration: NodeConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// The hosts the web server listens on: every bind address (docs/deploy.md "Several
    /// addresses"), so that a node on a public address and on loopback serves both.
    var httpHosts: [String] {
        Self.webHosts(bind: configuration.turn.bindAddresses.isEmpty ? ["127.0.0.1"] : configuration.turn.bindAddresses,
                      dualStack: Self.wildcardIsDualStack)
    }

    /// `bind` less the addresses a wildcard among them covers already: a second listening socket
    /// on the same port would fail with EADDRINUSE. `::` covers IPv4 too when it is `dualStack`
    /// (Linux's `net.ipv6.bindv6only` 0, the default; the web server cannot set IPV6_V6ONLY).
    static func webHosts(bind: [String], dualStack: Bool) -> [String] {
        let anyV6 = bind.contains("::")
        let anyV4 = bind.contains("0.0.0.0") || (anyV6 && dualStack)
        var hosts: [String] = []
        for host in bind where !hosts.contains(host) {
            let isV6 = host.contains(":")
            if isV6, anyV6, host != "::" { continue }
            if !isV6, anyV4, host != "0.0.0.0" || (anyV6 && dualStack) { continue }
            hosts.append(host)
        }
        return hosts
    }

    /// Whether a socket on `::` also takes IPv4 connections here.
    static let wildcardIsDualStack: Bool = {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv6/bindv6only", encoding: .utf8)) ?? "0"
        return text.trimmingCharacters(in: .whitespacesAndNewlines) == "0"
    }()

    /// Runs until SIGTERM or SIGINT. `onReady` gets the addresses a user needs.
    public func run(onReady: @escaping @Sendable (NodeAddresses) -> Void = { _ in }) async throws {
        NodeMetrics.bootstrap()
        // Every socket counts against RLIMIT_NOFILE: take the whole hard limit (max-connections).
        _ = ConnectionLimit.openFileLimit()
        // Signaling hands out TURN REST credentials: without a configured secret, make one.
        var turnConfiguration = configuration.turn
        // HTTPS (`https`): the files of tls-cert/tls-key, one certificate for this port and for
        // TURN over TLS; without them the node's own self-signed one, which TURN then shares.
        let webCertificate = try makeWebCertificate(turn: &turnConfiguration)
        let restSecret = turnConfiguration.restSecret ?? NodeSignaling.randomSecret()
        turnConfiguration.restSecret = restSecret
        // One budget of connections for the whole node (max-connections): WebSocket clients,
        // TURN TCP/TLS connections and relay sockets all hold file descriptors of one process.
        turnConfiguration.connectionBudget = ConnectionBudget(maximum: configuration.signaling.maxConnections)
        // TURN accepts the mesh's credentials (docs/mesh.md): issued by live members, per relay.
        let credentials = MeshCredentials(identity: try NodeSignaling.nodeIdentity(path: configuration.signaling.nodeKeyPath))
        turnConfiguration.credentialResolver = { credentials.password(forUsername: $0) }
        let turn = TURNServer(configuration: turnConfiguration, logger: logger)
        let signaling = try await NodeSignaling.make(configuration: configuration, turn: turn, restSecret: restSecret,
                                                     credentials: credentials, logger: logger)
        let hosts = httpHosts
        let redirectPort = webCertificate == nil ? nil : configuration.httpRedirectPort
        // The forwarder (docs/rooms.md) logs in to this node once its listeners are up.
        let forwardingNode = ForwardingNode()
        let forwarder = configuration.signaling.forwarder ? ForwarderService(
            identity: credentials.identity, localAddresses: configuration.turn.bindAddresses.filter { $0 != "0.0.0.0" && $0 != "::" },
            node: forwardingNode, logger: logger) : nil
        // Forwarders for other nodes (`forward-for`, docs/rooms.md "A forwarder on another
        // node"): one session at each, sharing one bound of forwarded calls.
        let farForwarders = configuration.signaling.forwardFor.map { url in
            ForwarderService(identity: credentials.identity, localAddresses: configuration.turn.bindAddresses.filter { $0 != "0.0.0.0" && $0 != "::" },
                             node: forwardingNode, forFarNode: url, logger: logger)
        }
        let farURLs = configuration.signaling.forwardFor
        let onReady: @Sendable (NodeAddresses) -> Void = { [logger] addresses in
            onReady(addresses)
            for (url, far) in zip(farURLs, farForwarders) {
                Task { await Self.keepLoggedIn(far, at: url, logger: logger) }
            }
            guard let forwarder else { return }
            Task {
                do {
                    // `http://host:port/` → `ws://host:port/ws` (SignalingClient adds the path to a bare authority).
                    try await forwarder.start(url: addresses.web.hasSuffix("/") ? String(addresses.web.dropLast()) : addresses.web)
                } catch {
                    logger.error("the forwarder could not log in to this node: \(error); room calls stay peer to peer")
                }
            }
        }
        let readiness = NodeReadiness(onReady: onReady, webCertificate: webCertificate,
                                      httpListeners: hosts.count * (redirectPort == nil ? 1 : 2), publicHost: configuration.publicHost,
                                      preferredHost: hosts.first)
        let turnService = TURNService(server: turn) { listeners in readiness.turnStarted(listeners) }

        let router = Router(context: NodeRequestContext.self)
        let web = WebPage(directory: configuration.webRoot)
        // CSP, nosniff, no referrer, no framing on every response; /status, /metrics, /mesh
        // for this host only unless configured otherwise (StatusAccess).
        router.add(middleware: SecurityHeaders(strictTransport: webCertificate != nil))
        router.add(middleware: StatusAccessMiddleware(access: configuration.status, statusAtRoot: !web.hasPage))
        router.get("/health") { _, _ in "ok\n" }
        // For load balancers and systemd checks: public, it tells only whether every listener is up.
        router.get("/healthz") { _, _ in readiness.healthResponse() }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: NodeMetrics.render())))
        }
        let status = NodeStatusPage(configuration: configuration, turn: turn, webCertificate: webCertificate)
        let statusResponse: @Sendable () -> Response = {
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8",
                                            .contentSecurityPolicy: NodeStatusPage.contentSecurityPolicy],
                     body: .init(byteBuffer: ByteBuffer(string: status.html())))
        }
        router.get("/status") { _, _ in statusResponse() }
        signaling.addRoutes(to: router)
        signaling.addMeshRoute(to: router)
        // The browser page (docs/web.md); without its files the status page stands at `/`.
        if web.hasPage {
            router.get("/") { request, _ in web.response(for: request.uri.path) }
            router.get("**") { request, _ in web.response(for: request.uri.path) }
        } else {
            logger.warning("no web page: \(web.origin) has no index.html; serving the status page at /")
            router.get("/") { _, _ in statusResponse() }
        }
        let endpoint = signaling.endpoint
        let singlePort = configuration.singlePort
        let firstBytesTimeout = configuration.turn.streamIdleTimeout
        // HTTP/1.1 for Hummingbird's router, with `/ws` taken by the signaling handlers on plain
        // SwiftNIO in the same pipeline (SignalingHTTPChannel).
        let server: HTTPServerBuilder = if let webCertificate {
            // TLS first, then HTTP/1.1 and the WebSocket upgrade inside it: wss:// on the same port.
            HTTPServerBuilder { responder in
                let http = SignalingHTTPChannel(responder: responder, endpoint: endpoint)
                // single-port: TURN over TLS too, told from HTTP by its first bytes.
                if singlePort {
                    return SharedPortChannel(base: http, certificate: webCertificate, turn: turn, firstBytesTimeout: firstBytesTimeout)
                }
                return ReloadableTLSChannel(base: http, certificate: webCertificate)
            }
        } else {
            HTTPServerBuilder { responder in SignalingHTTPChannel(responder: responder, endpoint: endpoint) }
        }
        // SIGHUP (a certbot renewal) reads the certificate files again, for the web port and
        // TURN's TLS listener alike.
        let hangup = reloadOnHangup(web: webCertificate, turn: turn, logger: logger)
        defer { hangup?.cancel() }
        // One server per bind address on one router; the first also runs TURN and signaling.
        let responder = router.buildResponder()
        var apps: [any Service] = hosts.enumerated().map { index, host in
            Application(
                responder: responder,
                server: server,
                configuration: .init(address: .hostname(host, port: configuration.httpPort), serverName: "meshnode"),
                services: index == 0 ? [turnService, signaling.service] : [],
                onServerRunning: { channel in
                    // single-port: each web listener is a TURN over TLS listener too.
                    if singlePort, let address = channel.localAddress {
                        turn.addSharedListener(address)
                        readiness.turnListenersChanged(turn.listeners)
                    }
                    readiness.httpStarted(channel.localAddress)
                },
                logger: logger
            )
        }
        if let redirectPort {
            let redirect = HTTPSRedirect(identity: NodePublicIdentity(configuration), httpsPort: configuration.httpPort)
            apps += hosts.map { host in
                Application(
                    responder: redirect.router.buildResponder(),
                    configuration: .init(address: .hostname(host, port: redirectPort), serverName: "meshnode"),
                    onServerRunning: { _ in readiness.redirectStarted() },
                    logger: logger
                )
            }
        }
        do {
            // The drain is stopped first (a group stops its services in reverse order); the
            // timeout bounds the whole stop, after which the group cancels what is left.
            let mesh = signaling.mesh
            let drain = NodeDrain(drain: signaling.endpoint.drain, readiness: readiness, beforeDrain: { await mesh.leave() },
                                  limit: NodeDrain.defaultLimit, logger: logger)
            var groupConfiguration = ServiceGroupConfiguration(services: apps + [drain], gracefulShutdownSignals: [.sigterm, .sigint],
                                                              logger: logger)
            groupConfiguration.maximumGracefulShutdownDuration = .seconds(15)
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            await signaling.store.close()
            throw error
        }
    }
}

/// What a user needs to reach a running node.
public struct NodeAddresses: Sendable {
    public var web: String
    public var metrics: String
    public var turn: [String]
    /// With HTTPS: the SHA-256 fingerprint of the web certificate, `AB:CD:…`, for a user to
    /// compare with what the browser shows (a self-signed certificate) or to pin in a link.
    public var tlsFingerprint: String?
}

extension Node {
    /// Logs `forwarder` in at the node at `url` and keeps it there: the first login is tried
    /// every 2 s until it succeeds (that node may start later, or not trust this one yet);
    /// after that the forwarder's client reconnects by itself.
    static func keepLoggedIn(_ forwarder: ForwarderService, at url: String, logger: Logger) async {
        var attempts = 0
        while !Task.isCancelled {
            do {
                try await forwarder.start(url: url)
                return
            } catch {
                attempts += 1
                // Every failure at first, then one line a minute: a node that does not trust
                // this key yet refuses each attempt the same way.
                if attempts <= 3 || attempts % 30 == 0 {
                    logger.warning("forwarder: no session at \(url) yet (attempt \(attempts)): \(error)")
                }
                try? await Task.sleep(for: .seconds(2))
            }
        }
    }

    /// The web certificate with `https` on, nil without. Without tls-cert and tls-key the
    /// self-signed one in the data directory, which TURN's TLS listener then uses too.
    func makeWebCertificate(turn: inout TURNServerConfiguration) throws -> WebCertificate? {
        guard configuration.https else { return nil }
        if let certificate = turn.tlsCertificatePath, let key = turn.tlsKeyPath {
            return try WebCertificate(certificatePath: certificate, keyPath: key)
        }
        // Made for the node's public identity: a browser that dials the public host or one of
        // the addresses finds it among the certificate's names.
        let identity = NodePublicIdentity(configuration)
        let names = identity.certificateNames
        let own = try WebCertificate.selfSigned(in: configuration.signaling.dataDirectory, commonName: identity.certificateCommonName,
                                                dnsNames: names.dns, ipAddresses: names.ips, logger: logger)
        turn.tlsCertificatePath = own.certificate
        turn.tlsKeyPath = own.key
        return try WebCertificate(certificatePath: own.certificate, keyPath: own.key)
    }
}

/// Calls `onReady` once both the TURN listeners and the HTTP server are up.
final class NodeReadiness: Sendable {
    private struct State {
        var listeners: [TURNServer.Listener]?
        /// The web listeners up so far, one per bind address, and the redirect listeners.
        var http: [SocketAddress?] = []
        var redirects = 0
        var fired = false
        var stopping = false
    }

    private let state = Mutex(State())
    private let onReady: @Sendable (NodeAddresses) -> Void
    private let webCertificate: WebCertificate?
    private let httpListeners: Int
    private let publicHost: String?
    private let preferredHost: String?

    /// `httpListeners`: how many web and redirect listeners must be up; `publicHost`: the name
    /// the web URL is given with when the node serves HTTPS; `preferredHost`: the listener
    /// whose address the web URL names (the first bind address).
    init(onReady: @escaping @Sendable (NodeAddresses) -> Void, webCertificate: WebCertificate? = nil, httpListeners: Int = 1,
         publicHost: String? = nil, preferredHost: String? = nil) {
        self.preferredHost = preferredHost
        self.onReady = onReady
        self.webCertificate = webCertificate
        self.httpListeners = httpListeners
        self.publicHost = webCertificate == nil ? nil : publicHost
    }

    func turnStarted(_ listeners: [TURNServer.Listener]) { update { $0.listeners = listeners } }
    /// A web listener that TURN shares (single-port) came up after TURN's own: list it too.
    func turnListenersChanged(_ listeners: [TURNServer.Listener]) { update { if $0.listeners != nil { $0.listeners = listeners } } }
    func httpStarted(_ address: SocketAddress?) { update { $0.http.append(address) } }
    func redirectStarted() { update { $0.redirects += 1 } }
    /// Whether every listener is up and the node is not stopping (`/healthz`).
    var isReady: Bool { state.withLock { $0.fired && !$0.stopping } }
    /// A graceful stop began: `/healthz` answers 503 from now on.
    func stopping() { state.withLock { $0.stopping = true } }

    private func update(_ change: (inout State) -> Void) {
        let ready: NodeAddresses? = state.withLock { s in
            change(&s)
            guard !s.fired, let listeners = s.listeners, s.http.count + s.redirects >= httpListeners, !s.http.isEmpty else { return nil }
            // The listeners start in any order: the first bind address's names the page, else an
            // IPv4 one (`localhost` is 127.0.0.1 first for most people), whichever started first.
            let http = s.http.first(where: { $0?.ipAddress != nil && $0?.ipAddress == preferredHost })
                ?? s.http.first { if case .v4? = $0 { true } else { false } } ?? s.http[0]
            s.fired = true
            var base = Self.url(http, scheme: webCertificate == nil ? "http" : "https")
            // With a public host the page is opened at its name (the certificate's).
            if let publicHost, let port = http?.port { base = "https://\(publicHost)" + (port == 443 ? "" : ":\(port)") }
            return NodeAddresses(web: base + "/", metrics: base + "/metrics", turn: listeners.map(Self.turnURL),
                                 tlsFingerprint: webCertificate?.fingerprint)
        }
        if let ready { onReady(ready) }
    }

    static func url(_ address: SocketAddress?, scheme: String = "http") -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return "\(scheme)://localhost" }
        if case .v6 = address { return "\(scheme)://[\(ip)]:\(port)" }
        return "\(scheme)://\(ip):\(port)"
    }

    /// The listener's TURN URI (RFC 7065), as `make run` prints it.
    static func turnURL(_ listener: TURNServer.Listener) -> String {
        listener.iceServerURIs(host: listener.address.ipAddress ?? "?").first { $0.scheme.isTURN }?.description ?? "?"
    }
}
