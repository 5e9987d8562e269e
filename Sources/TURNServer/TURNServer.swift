import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Certificates
import STUN

/// A STUN and TURN server (RFC 8489, RFC 8656, RFC 6062, RFC 6156) on SwiftNIO: UDP, TCP and
/// TLS listeners on every bind address, allocations sharded over the event loops.
public final class TURNServer: Sendable {
    /// One open listener.
    public struct Listener: Sendable, CustomStringConvertible {
        public var transport: ClientTransport
        public var address: SocketAddress
        /// A listener for `transport` on `address`.
        public init(transport: ClientTransport, address: SocketAddress) {
            self.transport = transport
            self.address = address
        }
        public var description: String {
            let ip = address.ipAddress ?? "?"
            return "\(transport.rawValue)://\(ip.contains(":") ? "[\(ip)]" : ip):\(address.port ?? 0)"
        }
    }

    struct State {
        var channels: [Channel] = []
        var listeners: [Listener] = []
        /// Ports of another server that TURN shares (``adoptStream(_:place:opened:)``).
        var sharedListeners: [Listener] = []
        var loops: [ObjectIdentifier: NIOLoopBound<TURNLoop>] = [:]
        var shared: TURNShared?
        /// The TLS listener's context; each accepted connection takes the one current then
        /// (``reloadTLS()`` swaps it).
        var tls: NIOSSLContext?
    }

    public let configuration: TURNServerConfiguration
    /// Datagrams read per system call (recvmmsg) on listeners and on relayed addresses.
    static let listenerVectorReads = 32
    /// Kernel socket buffer sizes asked for; the kernel uses memory only for what is queued.
    static let listenerSocketBuffer = 4 << 20
    static let relaySocketBuffer = 1 << 20
    static let relayVectorReads = 8
    /// Larger datagrams are cut: 2 KiB covers the 1500-byte MTU of every path a relay sees in
    /// practice, and keeps a listener's receive buffer (32 × 2 KiB) under glibc's mmap
    /// threshold, so each read's buffer comes from the heap instead of a fresh mapping.
    static let maximumDatagram = 2048
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    let state = Mutex(State())

    public init(configuration: TURNServerConfiguration, logger: Logger = Logger(label: "meshnode.turn")) {
        self.configuration = configuration
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        self.logger = logger
    }

    /// The listeners that are open, with their actual ports.
    public var listeners: [Listener] { state.withLock { $0.listeners + $0.sharedListeners } }

    /// Allocations held now (the load a node reports to the mesh); 0 before start.
    public var activeAllocations: Int { state.withLock { $0.shared?.quota.total ?? 0 } }

    /// Opens every listener. Port 0 picks a free port, the same for UDP and TCP.
    public func start() async throws {
        let config = configuration
        guard !config.bindAddresses.isEmpty else { throw TURNServerError(.configuration, "no bind address given") }
        let (relay4, relay6) = try Self.relayAddresses(config)
        let shared = TURNShared(config: config, relayIPv4: relay4, relayIPv6: relay6, logger: logger)
        var loops: [ObjectIdentifier: NIOLoopBound<TURNLoop>] = [:]
        for loop in group.makeIterator() {
            let bound = try await loop.submit {
                let turnLoop = TURNLoop(eventLoop: loop, shared: shared)
                turnLoop.start()
                return NIOLoopBound(turnLoop, eventLoop: loop)
            }.get()
            loops[ObjectIdentifier(loop)] = bound
        }
        state.withLock { $0.loops = loops; $0.shared = shared }
        let tls = try config.tlsPort.map { _ in try Self.makeTLSContext(config) }
        state.withLock { $0.tls = tls }

        // With port 0 the UDP port is the kernel's pick; TCP may find it taken by another
        // socket, so a few fresh picks are tried before giving up.
        let attempts = config.port == 0 ? 5 : 1
        for attempt in 1...attempts {
            do {
                try await bindListeners(config: config, loops: loops, shared: shared, tls: tls)
                break
            } catch {
                let channels = state.withLock { s in
                    defer { s.channels = []; s.listeners = [] }
                    return s.channels
                }
                for channel in channels { try? await channel.close() }
                shared.udpListeners.withLock { $0 = [:] }
                if attempt == attempts { throw error }
            }
        }
        shared.listenerPorts.withLock { $0 = Set(listeners.compactMap(\.address.port)) }
        logger.info("STUN/TURN listening", metadata: [
            "listeners": "\(listeners.map(\.description).joined(separator: " "))",
            "relay": "\([relay4, relay6].compactMap { $0?.description }.joined(separator: " "))",
            "relay_ports": "\(config.relayPorts.lowerBound)-\(config.relayPorts.upperBound)",
        ])
    }

    /// Binds UDP, TCP and TLS listeners on every bind address.
    private func bindListeners(config: TURNServerConfiguration, loops: [ObjectIdentifier: NIOLoopBound<TURNLoop>],
                               shared: TURNShared, tls: NIOSSLContext?) async throws {
        var port = config.port
        var tlsPort = config.tlsPort ?? 0
        for host in config.bindAddresses {
            let wildcardV6 = host == "::"
            port = try await bindUDP(host: host, port: port, loops: loops, shared: shared)
            if config.enableRFC5780 {
                // RFC 5780 §4.1: a second UDP port on every address lets CHANGE-REQUEST change port.
                _ = try await bindUDP(host: host, port: TURNShared.otherPort(port), loops: loops, shared: shared)
            }
            let tcp = try await bind { try await self.streamBootstrap(tls: nil, v6only: wildcardV6, shared: shared).bind(host: host, port: port).get() }
            record(tcp, .tcp)
            if let tls {
                let channel = try await bind { try await self.streamBootstrap(tls: tls, v6only: wildcardV6, shared: shared).bind(host: host, port: tlsPort).get() }
                tlsPort = channel.localAddress?.port ?? tlsPort
                record(channel, .tls)
            }
        }
    }

    /// One UDP listener per event loop on `host:port` (SO_REUSEPORT when there are several);
    /// returns the port bound.
    private func bindUDP(host: String, port: Int, loops: [ObjectIdentifier: NIOLoopBound<TURNLoop>], shared: TURNShared) async throws -> Int {
        var port = port
        let reusePort = configuration.threads > 1 || configuration.relayEngine
        if reusePort && port != 0 {
            // SO_REUSEPORT would let this process share a port that another server (say a second
            // node started by mistake) already listens on, each getting part of the traffic. A
            // plain bind first fails there, as without SO_REUSEPORT: the operator hears of it.
            var plain = DatagramBootstrap(group: group)
            if host == "::" { plain = plain.channelOption(.ipv6Only, value: 1) }
            let probe = try await bind { try await plain.bind(host: host, port: port).get() }
            try await probe.close()
        }
        for loop in group.makeIterator() {
            let bound = loops[ObjectIdentifier(loop)]!
            var bootstrap = DatagramBootstrap(group: loop)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.datagramVectorReadMessageCount, value: Self.listenerVectorReads)
                // One recvmmsg per readiness event: NIO would otherwise read again until
                // EAGAIN, a wasted system call for every burst (epoll is level-triggered).
                .channelOption(.maxMessagesPerRead, value: 1)
                // Bursts from many clients must wait in the kernel, not be dropped there
                // (capped by net.core.rmem_max / wmem_max).
                .channelOption(.socketOption(.so_rcvbuf), value: Self.listenerSocketBuffer)
                .channelOption(.socketOption(.so_sndbuf), value: Self.listenerSocketBuffer)
                // NIO slices one buffer into the vector's messages: size it for all of them.
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: Self.listenerVectorReads * Self.maximumDatagram))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(TURNDatagramHandler(loop: bound))
                    }
                }
            // The relay engine's client sockets share the listener's port (TURNLoop+Engine.swift).
            if reusePort { bootstrap = bootstrap.channelOption(.reusePort, value: 1) }
            if host == "::" { bootstrap = bootstrap.channelOption(.ipv6Only, value: 1) }
            let channel = try await bind { try await bootstrap.bind(host: host, port: port).get() }
            port = channel.localAddress?.port ?? port
            record(channel, .udp)
            if configuration.enableRFC5780, let local = channel.localAddress {
                shared.udpListeners.withLock { $0[local] = channel }
            }
        }
        return port
    }

    private func bind(_ open: () async throws -> Channel) async throws -> Channel {
        do { return try await open() } catch {
            throw TURNServerError(.bind, "cannot listen: \(error)")
        }
    }

    private func record(_ channel: Channel, _ transport: ClientTransport) {
        state.withLock { s in
            s.channels.append(channel)
            if let address = channel.localAddress,
               !s.listeners.contains(where: { $0.transport == transport && $0.address == address }) {
                s.listeners.append(Listener(transport: transport, address: address))
            }
        }
    }

    private func streamBootstrap(tls: NIOSSLContext?, v6only: Bool, shared: TURNShared) -> ServerBootstrap {
        let loops = state.withLock { $0.loops }
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                // Over a cap the connection is closed before it reads a byte: there is no
                // request yet to answer with an error code (the refusal is counted and logged).
                guard Self.admit(channel, shared: shared) else {
                    return channel.eventLoop.makeFailedFuture(ChannelError.inputClosed)
                }
                return channel.eventLoop.makeCompletedFuture {
                    let loop = loops[ObjectIdentifier(channel.eventLoop)]!
                    let opened = NIODeadline.now()
                    if let tls {
                        let current = self.state.withLock { $0.tls } ?? tls
                        try channel.pipeline.syncOperations.addHandler(TLSDetectHandler(tls: current, loop: loop, opened: opened))
                    } else {
                        try channel.pipeline.syncOperations.addHandler(TURNStreamHandler(loop: loop, transport: .tcp, opened: opened))
                    }
                }
            }
        if v6only { bootstrap = bootstrap.serverChannelOption(.ipv6Only, value: 1) }
        return bootstrap
    }

    /// Takes a place for an accepted TCP or TLS connection (``StreamConnectionGate``), given
    /// back when it closes; false when a cap refuses it.
    static func admit(_ channel: Channel, shared: TURNShared) -> Bool {
        takePlace(for: channel, shared: shared) != nil
    }

    /// The place in the caps of a connection just accepted (on a TURN port or a shared one),
    /// given back when the channel closes or with ``StreamPlace/release()``; nil when a cap
    /// refuses it (counted, and logged at debug level only: a flood of connections must not
    /// become a flood of log lines).
    static func takePlace(for channel: Channel, shared: TURNShared) -> StreamPlace? {
        let gate = shared.streamGate
        switch gate.admit(channel.remoteAddress) {
        case .failure(let refusal):
            shared.metrics.refused(refusal.metric)
            shared.logger.debug("TCP/TLS connection refused", metadata: [
                "client": "\(channel.remoteAddress.map { "\($0)" } ?? "?")", "reason": "\(refusal.reason)",
            ])
            return nil
        case .success(let source):
            let metrics = shared.metrics
            metrics.streamConnections.record(gate.current)
            let place = StreamPlace {
                gate.release(source)
                metrics.streamConnections.record(gate.current)
            }
            channel.closeFuture.whenComplete { _ in place.release() }
            return place
        }
    }

    /// Reads the TLS certificate chain and key files again (SIGHUP after a renewal): TLS
    /// connections accepted afterwards get the new certificate; those up keep theirs, so no
    /// allocation drops. Throws, keeping the old certificate, when the files do not load; does
    /// nothing without a TLS listener or certificate files (a self-signed certificate stays).
    public func reloadTLS() throws {
        guard configuration.tlsCertificatePath != nil, state.withLock({ $0.tls }) != nil else { return }
        let context = try Self.makeTLSContext(configuration)
        state.withLock { $0.tls = context }
    }

    /// Closes the listeners, deletes every allocation and stops the event loops.
    public func stop() async {
        let (channels, loops) = state.withLock { s in
            defer { s.channels = []; s.loops = [:] }
            return (s.channels, s.loops)
        }
        for channel in channels { try? await channel.close() }
        for (_, bound) in loops {
            try? await bound.eventLoop.submit { bound.value.stop() }.get()
        }
        try? await group.shutdownGracefully()
    }

    // MARK: Configuration helpers

    static func relayAddresses(_ config: TURNServerConfiguration) throws -> (IPAddress?, IPAddress?) {
        var candidates: [IPAddress] = []
        for text in config.relayAddresses {
            guard let ip = IPAddress(string: text) else { throw TURNServerError(.configuration, "relay address \(text) is not an IP address") }
            candidates.append(ip)
        }
        if candidates.isEmpty {
            for host in config.bindAddresses {
                guard let ip = IPAddress(string: host) else { throw TURNServerError(.configuration, "bind address \(host) is not an IP address") }
                if ip == .v4(0) || ip == .v6(0, 0) {
                    let devices = (try? System.enumerateDevices()) ?? []
                    let wanted = ip.isIPv4
                    let addresses = devices.compactMap { $0.address.flatMap(IPAddress.init) }.filter { $0.isIPv4 == wanted }
                    // Prefer a routable address; fall back to loopback on a machine without one.
                    if let pick = addresses.first(where: { PeerAddressPolicy().refusal(for: $0) == nil }) ?? addresses.first {
                        candidates.append(pick)
                    }
                } else {
                    candidates.append(ip)
                }
            }
        }
        return (candidates.first(where: \.isIPv4), candidates.first(where: { !$0.isIPv4 }))
    }

    static func makeTLSContext(_ config: TURNServerConfiguration) throws -> NIOSSLContext {
        do {
            let chain: [NIOSSLCertificateSource]
            let key: NIOSSLPrivateKeySource
            if let certPath = config.tlsCertificatePath, let keyPath = config.tlsKeyPath {
                chain = try NIOSSLCertificate.fromPEMFile(certPath).map { .certificate($0) }
                key = .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
            } else {
                let generated = try SelfSignedCertificate(commonName: "meshnode")
                chain = [.certificate(try NIOSSLCertificate(bytes: Array(generated.certificatePEM.utf8), format: .pem))]
                key = .privateKey(try NIOSSLPrivateKey(bytes: Array(generated.privateKeyPEM.utf8), format: .pem))
            }
            return try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: key))
        } catch let error as TURNServerError {
            throw error
        } catch {
            throw TURNServerError(.tls, "cannot set up TLS: \(error)")
        }
    }
}
