import Foundation
import NIOCore
import NIOPosix
import STUN

/// Request processing: authentication (RFC 8489 §9.2), Binding, and the TURN methods of
/// RFC 8656 §7–§12.
extension TURNLoop {
    /// What answers a request: the response bytes go back over the link they came in on.
    ///
    /// Strangers over UDP (requests not authenticated: Bindings, challenges, refusals before the
    /// credentials check out) get as few bytes as the protocol allows: their source address can
    /// be forged, so every byte more than the request is a byte of reflection towards a victim
    /// (the review measured a 20-byte Allocate answered with 92 bytes, ×4.6). They get ERROR-CODE
    /// with an empty reason phrase (RFC 8489 §14.8: the phrase is for diagnostics; the code is
    /// what a client acts on), and FINGERPRINT only when the request carried one: a client that
    /// multiplexes STUN with media and tells it apart by FINGERPRINT (libnice, browsers;
    /// RFC 8489 §14.7) sends one itself. A 20-byte Allocate now gets a 68-byte 401, a 20-byte
    /// Binding a 32-byte answer (was 40). Over TCP and TLS the handshake proves the address, and
    /// authenticated users are known: both get reason phrases and FINGERPRINT always.
    struct Reply {
        var link: ClientLink
        var request: STUNMessage
        var key: [UInt8]?

        /// Whether the answer goes to a UDP address whose credentials have not checked out.
        var toStranger: Bool { key == nil && !link.isStream }
        private var fingerprint: Bool { !toStranger || request.hasFingerprint }

        func success(_ build: (inout STUNMessage) -> Void = { _ in }) -> ByteBuffer {
            var response = STUNMessage(type: STUNMessageType(request.type.method, .successResponse),
                                       transactionID: request.transactionID)
            build(&response)
            return response.encode(integrity: key, fingerprint: fingerprint, allocator: link.channel.allocator)
        }

        func error(_ code: STUNErrorCode, _ reason: String? = nil, build: (inout STUNMessage) -> Void = { _ in }) -> ByteBuffer {
            var response = STUNMessage(type: STUNMessageType(request.type.method, .errorResponse),
                                       transactionID: request.transactionID)
            response.appendErrorCode(code, reason: toStranger ? "" : reason)
            build(&response)
            return response.encode(integrity: key, fingerprint: fingerprint, allocator: link.channel.allocator)
        }

        func send(_ bytes: ByteBuffer) { link.send(bytes, flush: true) }
    }

    func handleRequest(_ request: STUNMessage, link: ClientLink, tuple: FiveTuple) {
        var reply = Reply(link: link, request: request, key: nil)
        if request.type.method == .binding {
            handleBinding(reply, tuple: tuple)
            return
        }
        switch request.type.method {
        case .allocate, .refresh, .createPermission, .channelBind, .connect, .connectionBind:
            break
        default:
            reply.send(reply.error(.badRequest, "method \(request.type.method) is not a request this server handles"))
            return
        }
        guard let (username, key, identity) = authenticate(reply) else { return }
        reply.key = key
        let unknown = request.unknownComprehensionRequired
        guard unknown.isEmpty else {
            reply.send(reply.error(.unknownAttribute) { $0.appendUnknownAttributes(unknown) })
            return
        }
        switch request.type.method {
        case .allocate: handleAllocate(reply, tuple: tuple, username: username, identity: identity)
        case .refresh: handleRefresh(reply, tuple: tuple, username: username)
        case .createPermission: handleCreatePermission(reply, tuple: tuple, username: username)
        case .channelBind: handleChannelBind(reply, tuple: tuple, username: username)
        case .connect: handleConnect(reply, tuple: tuple, username: username)
        case .connectionBind: handleConnectionBind(reply, tuple: tuple, username: username)
        default: break
        }
    }

    // MARK: Authentication

    /// RFC 8489 §9.2.4: long-term credential checks. Sends the challenge or error itself and
    /// returns nil, or returns the user, the key to sign the response with and the identity the
    /// user's allocations count under (``TURNShared/Credential``).
    private func authenticate(_ reply: Reply) -> (String, [UInt8], String)? {
        let request = reply.request
        let realm = config.realm
        let challenge: (inout STUNMessage) -> Void = { [shared] in
            $0.append(.realm, string: realm)
            $0.append(.nonce, string: shared.nonces.issue())
        }
        guard request.hasIntegrity else {
            reply.send(reply.error(.unauthenticated, build: challenge))
            return nil
        }
        let username: String?
        if let hash = request.attribute(.userhash) {
            username = shared.username(forUserhash: Array(hash.readableBytesView))
        } else {
            username = request.username
        }
        guard request.has(.username) || request.has(.userhash), let nonce = request.nonce, request.realm != nil else {
            reply.send(reply.error(.badRequest, "USERNAME, REALM and NONCE are required with MESSAGE-INTEGRITY"))
            return nil
        }
        guard shared.nonces.isValid(nonce) else {
            shared.metrics.refused("stale_nonce")
            reply.send(reply.error(.staleNonce, build: challenge))
            return nil
        }
        guard let username, request.realm == realm, let credential = shared.credential(for: username) else {
            shared.metrics.authFailures.increment()
            logRefusal("authentication failed", kind: "unknown-user", metadata: ["user": "\(username?.prefix(64) ?? "?")", "reason": "unknown or expired user"])
            reply.send(reply.error(.unauthenticated, build: challenge))
            return nil
        }
        // RFC 8489 §14.12: PASSWORD-ALGORITHM SHA-256 asks for the SHA-256 key.
        let sha256Key = ((try? request.passwordAlgorithm()) ?? nil)?.number == STUNPasswordAlgorithm.sha256.number
        let key = sha256Key
            ? LongTermCredentials.keySHA256(username: username, realm: realm, password: credential.password)
            : LongTermCredentials.key(username: username, realm: realm, password: credential.password)
        guard request.verifyIntegrity(key: key) else {
            shared.metrics.authFailures.increment()
            logRefusal("authentication failed", kind: "bad-integrity", metadata: ["user": "\(username.prefix(64))", "reason": "bad MESSAGE-INTEGRITY"])
            reply.send(reply.error(.unauthenticated, build: challenge))
            return nil
        }
        return (username, key, credential.identity)
    }

    // MARK: Binding (RFC 8489 §6.3.1)

    private func handleBinding(_ reply: Reply, tuple: FiveTuple) {
        shared.metrics.bindingRequests.increment()
        let unknown = reply.request.unknownComprehensionRequired.filter { $0 != .changeRequest }
        guard unknown.isEmpty else {
            reply.send(reply.error(.unknownAttribute) { $0.appendUnknownAttributes(unknown) })
            return
        }
        guard config.enableRFC5780, tuple.transport == .udp else {
            if reply.request.has(.changeRequest) {
                reply.send(reply.error(.unknownAttribute) { $0.appendUnknownAttributes([.changeRequest]) })
            } else {
                reply.send(reply.success { $0.appendXORAddress(.xorMappedAddress, tuple.client) })
            }
            return
        }
        respondRFC5780(reply, tuple: tuple)
    }

    /// RFC 5780 §6: OTHER-ADDRESS and RESPONSE-ORIGIN in every response, and a CHANGE-REQUEST
    /// answered from the other IP and/or port. Without a second address the server cannot
    /// change IP and refuses such requests with 420 (§6.1).
    private func respondRFC5780(_ reply: Reply, tuple: FiveTuple) {
        let other = shared.otherAddress(of: tuple.server)
        let change: (changeIP: Bool, changePort: Bool)
        do { change = try reply.request.changeRequest() ?? (false, false) } catch {
            reply.send(reply.error(.badRequest, error.reason))
            return
        }
        var origin = tuple.server
        if change.changeIP || change.changePort {
            guard let other, let ip = IPAddress(change.changeIP ? other : tuple.server) else {
                reply.send(reply.error(.unknownAttribute) { $0.appendUnknownAttributes([.changeRequest]) })
                return
            }
            origin = ip.socketAddress(port: change.changePort ? (other.port ?? 0) : (tuple.server.port ?? 0))
        }
        let response = reply.success {
            $0.appendXORAddress(.xorMappedAddress, tuple.client)
            $0.appendAddress(.responseOrigin, origin)
            if let other { $0.appendAddress(.otherAddress, other) }
        }
        if origin == tuple.server {
            reply.send(response)
        } else if let channel = shared.udpListener(at: origin) {
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: tuple.client, data: response), promise: nil)
        }
    }

    // MARK: Allocate (RFC 8656 §7.2, RFC 6062 §5.1)

    /// How long the port after an EVEN-PORT allocation stays reserved for a later Allocate with
    /// its RESERVATION-TOKEN (RFC 8656 §7.2: about 30 seconds).
    static let portReservationLifetime = TimeAmount.seconds(30)
    /// How many other pooled ports an Allocate tries when another program holds its port.
    static let relayBindRetries = 4

    /// What an Allocate asks for, once its attributes are read and checked.
    private struct AllocateRequest {
        var transport: TURNTransportProtocol
        /// REQUESTED-ADDRESS-FAMILY, IPv4 without it (RFC 8656 §7.2); with a RESERVATION-TOKEN,
        /// the family of the reserved port.
        var family: STUNAddressFamily
        var evenPort: (reserveNext: Bool, present: Bool)
        var reservationToken: UInt64?
        var lifetime: UInt32?
        /// ADDITIONAL-ADDRESS-FAMILY asked for a second, IPv6, relayed address, which this server
        /// does not allocate; the success response says so.
        var additionalFamilyRefused: Bool
    }

    func lifetime(requested: UInt32?) -> Int {
        let asked = requested.map(Int.init) ?? config.defaultLifetime
        return max(config.defaultLifetime, min(asked, config.maximumLifetime))
    }

    /// Checks the request, reserves a place in the quota and a relay port, then binds the relay
    /// socket. The reservation gives back what it holds on every refusal below and on a failed
    /// bind; only a created allocation commits it.
    private func handleAllocate(_ reply: Reply, tuple: FiveTuple, username: String, identity: String) {
        if let existing = allocations[tuple] {
            answerRepeatedAllocate(reply, existing: existing)
            return
        }
        // A retransmission that arrives while the relay socket binds is dropped: the answer to
        // the first request is on its way.
        guard !pending.contains(tuple), var request = checkAllocate(reply) else { return }
        var reservation = AllocationReservation(username: username, identity: identity, quota: shared.quota, ports: shared.ports)
        if let token = request.reservationToken {
            guard let family = reservation.claim(token: token) else {
                reply.send(reply.error(.badRequest, "unknown or expired RESERVATION-TOKEN"))
                return
            }
            request.family = family
        }
        guard let relayIP = shared.relayIP(family: request.family, reached: tuple.server) else {
            shared.metrics.refused("address_family")
            reply.send(reply.error(.addressFamilyNotSupported, "this server has no \(request.family) relay address"))
            return
        }
        if let why = reservation.acquireQuota() {
            shared.metrics.refused("quota")
            logRefusal("allocation refused", kind: "quota", metadata: ["user": "\(username)", "identity": "\(identity)", "reason": "\(why)"])
            reply.send(reply.error(.allocationQuotaReached, why))
            return
        }
        if reservation.port == nil,
           !reservation.takePort(even: request.evenPort.present, reserveNext: request.evenPort.reserveNext, ipv6: request.family == .ipv6) {
            shared.metrics.refused("capacity")
            reply.send(reply.error(.insufficientCapacity, "no relay port is free"))
            return
        }
        // A reserved port must be used as is; a pooled one may be swapped when another program
        // holds it.
        let retries = request.reservationToken == nil && reservation.reservationToken == nil ? Self.relayBindRetries : 0
        pending.insert(tuple)
        openRelay(request, ip: relayIP, tuple: tuple, reply: reply, reservation: reservation, retries: retries)
    }

    /// RFC 8656 §7.2: an Allocate on a 5-tuple that has an allocation is either a retransmission
    /// of the request that created it, answered as before, or a mismatch.
    private func answerRepeatedAllocate(_ reply: Reply, existing: Allocation) {
        if existing.allocateTransactionID == reply.request.transactionID {
            reply.send(existing.allocateResponse)
        } else {
            shared.metrics.refused("allocation_mismatch")
            reply.send(reply.error(.allocationMismatch, "this 5-tuple already has an allocation"))
        }
    }

    /// Reads and checks what the Allocate asks for (RFC 8656 §7.2, RFC 6062 §5.1); sends the
    /// error and returns nil when it cannot be served.
    private func checkAllocate(_ reply: Reply) -> AllocateRequest? {
        let request = reply.request
        let transport: TURNTransportProtocol
        let evenPort: (reserveNext: Bool, present: Bool)
        let token: UInt64?
        let lifetime: UInt32?
        let requestedFamily: STUNAddressFamily?
        do {
            guard let requested = try request.requestedTransport() else {
                reply.send(reply.error(.badRequest, "REQUESTED-TRANSPORT is missing"))
                return nil
            }
            transport = requested
            evenPort = try request.evenPort()
            token = try request.uint64(.reservationToken)
            lifetime = try request.lifetime()
            requestedFamily = try request.addressFamily(.requestedAddressFamily)
        } catch {
            reply.send(reply.error(.badRequest, error.reason))
            return nil
        }
        if requestedFamily != nil && (token != nil || request.has(.additionalAddressFamily)) {
            reply.send(reply.error(.badRequest, "REQUESTED-ADDRESS-FAMILY cannot come with RESERVATION-TOKEN or ADDITIONAL-ADDRESS-FAMILY"))
            return nil
        }
        guard transport == .udp || transport == .tcp else {
            shared.metrics.refused("wrong_transport")
            reply.send(reply.error(.unsupportedTransportProtocol,
                                   "relaying protocol \(transport.rawValue) is not supported; use \(TURNTransportProtocol.udp) or \(TURNTransportProtocol.tcp)"))
            return nil
        }
        if transport == .tcp && !reply.link.isStream {
            shared.metrics.refused("wrong_transport")
            reply.send(reply.error(.badRequest, "TCP relaying (RFC 6062) needs a TCP or TLS control connection"))
            return nil
        }
        if token != nil && evenPort.present {
            reply.send(reply.error(.badRequest, "EVEN-PORT and RESERVATION-TOKEN are exclusive"))
            return nil
        }
        let family = requestedFamily ?? .ipv4
        guard family == .ipv4 || family == .ipv6 else {
            reply.send(reply.error(.addressFamilyNotSupported, "unknown address family \(family.rawValue)"))
            return nil
        }
        return AllocateRequest(transport: transport, family: family, evenPort: evenPort, reservationToken: token, lifetime: lifetime,
                               additionalFamilyRefused: request.has(.additionalAddressFamily))
    }

    /// Binds the relay socket on the reserved port; when another program holds the port and
    /// `retries` allow, swaps it for another pooled one. The reservation travels with the bind.
    private func openRelay(_ request: AllocateRequest, ip: IPAddress, tuple: FiveTuple, reply: Reply,
                           reservation: consuming AllocationReservation, retries: Int) {
        guard let port = reservation.port else { preconditionFailure("the relay port is reserved before the bind") }
        // The completion takes the reservation over; it runs once, on this loop.
        var held = Optional(reservation)
        let address = ip.socketAddress(port: port)
        let bound = relaysInEngine(transport: request.transport, link: reply.link)
            ? bindEngineRelay(address: address) : bindRelay(address: address, tcp: request.transport == .tcp)
        bound.assumeIsolated().whenComplete { [self] result in
            guard var reservation = held.take() else { return }
            switch result {
            case .success(let relayChannel):
                pending.remove(tuple)
                createAllocation(request, relayChannel: relayChannel, ip: ip, tuple: tuple, reply: reply, reservation: reservation)
            case .failure(let error):
                if retries > 0, reservation.replacePort(even: request.evenPort.present) {
                    openRelay(request, ip: ip, tuple: tuple, reply: reply, reservation: reservation, retries: retries - 1)
                    return
                }
                pending.remove(tuple)
                // The quota and ports go back before the answer leaves: the client's next
                // Allocate may reach another loop (SO_REUSEPORT) at once.
                _ = consume reservation
                logger.warning("relay bind failed", metadata: ["ip": "\(ip)", "error": "\(error)"])
                reply.send(reply.error(.insufficientCapacity, "could not open a relay socket"))
            }
        }
    }

    /// The relay socket is bound: the allocation takes over the reservation and the client learns
    /// its relayed address.
    private func createAllocation(_ request: AllocateRequest, relayChannel: Channel, ip: IPAddress, tuple: FiveTuple, reply: Reply,
                                  reservation: consuming AllocationReservation) {
        // A TCP or TLS client that left while the socket was being bound gets nothing: its
        // allocation would hold the port and the quota until its lifetime ran out.
        if reply.link.isStream && !reply.link.channel.isActive {
            if let socket = engineRelaySockets.removeValue(forKey: ObjectIdentifier(relayChannel)) { close(socket) }
            relayChannel.close(promise: nil)
            return
        }
        let username = reservation.username
        let identity = reservation.identity
        let (port, reservationToken) = reservation.commit()
        if let reservationToken {
            let ports = shared.ports
            eventLoop.scheduleTask(in: Self.portReservationLifetime) { ports.expire(token: reservationToken) }
        }
        let relayAddress = ip.socketAddress(port: port)
        let lifetime = lifetime(requested: request.lifetime)
        let allocation = Allocation(
            tuple: tuple, username: username, identity: identity, key: reply.key ?? [], client: reply.link, relayAddress: relayAddress,
            relayPort: port, isTCP: request.transport == .tcp, relayChannel: relayChannel, transactionID: reply.request.transactionID,
            expiry: .now(), bitsPerSecond: config.maxBitsPerSecond)
        allocations[tuple] = allocation
        attachOutboxes(allocation)
        attachRelay(allocation)
        scheduleExpiry(allocation, lifetime: lifetime)
        allocation.allocateResponse = reply.success {
            // Behind a 1:1 NAT the socket is bound on the private address; peers reach the public one.
            $0.appendXORAddress(.xorRelayedAddress, shared.advertised(relayAddress))
            $0.append(.lifetime, uint32: UInt32(lifetime))
            $0.appendXORAddress(.xorMappedAddress, tuple.client)
            if let reservationToken { $0.append(.reservationToken, uint64: reservationToken) }
            // RFC 8656 §7.2: one family is relayed; ADDRESS-ERROR-CODE says why the other is not.
            if request.additionalFamilyRefused { $0.appendAddressErrorCode(family: .ipv6, .addressFamilyNotSupported) }
        }
        reply.send(allocation.allocateResponse)
        shared.metrics.allocationsCreated.increment()
        shared.metrics.allocationsActive.record(shared.quota.total)
        logger.info("allocation created", metadata: [
            "user": "\(username)", "client": "\(tuple.client)", "transport": "\(tuple.transport.rawValue)",
            "relay": "\(relayAddress)", "relay_transport": "\(request.transport == .tcp ? "tcp" : "udp")", "lifetime": "\(lifetime)",
        ])
    }

    /// Opens the relayed transport address: a UDP socket, or for RFC 6062 a TCP listener that
    /// outgoing peer connections share (SO_REUSEADDR and SO_REUSEPORT).
    private func bindRelay(address: SocketAddress, tcp: Bool) -> EventLoopFuture<Channel> {
        if tcp {
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            return ServerBootstrap(group: eventLoop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.reusePort, value: 1)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.addHandler(TCPPeerHandler(incomingTo: bound, relay: address))
                    }
                }
                .childChannelOption(.autoRead, value: false)
                .bind(to: address)
        }
        return DatagramBootstrap(group: eventLoop)
            .channelOption(.datagramVectorReadMessageCount, value: TURNServer.relayVectorReads)
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: TURNServer.relaySocketBuffer)
            .channelOption(.socketOption(.so_sndbuf), value: TURNServer.relaySocketBuffer)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: TURNServer.relayVectorReads * TURNServer.maximumDatagram))
            .bind(to: address)
    }

    private func attachRelay(_ allocation: Allocation) {
        guard !allocation.isTCP else { return }
        if let socket = engineRelaySockets.removeValue(forKey: ObjectIdentifier(allocation.relayChannel)) {
            attachEngine(allocation, relaySocket: socket)
            return
        }
        let handler = RelayHandler(loop: NIOLoopBound(self, eventLoop: eventLoop), allocation: NIOLoopBound(allocation, eventLoop: eventLoop))
        try? allocation.relayChannel.pipeline.syncOperations.addHandler(handler)
    }

    // MARK: Refresh (RFC 8656 §7.3)

    /// The caller's allocation, or an error sent back: 437 without one, 441 for another user.
    func ownedAllocation(_ reply: Reply, tuple: FiveTuple, username: String) -> Allocation? {
        guard let allocation = allocations[tuple] else {
            shared.metrics.refused("allocation_mismatch")
            reply.send(reply.error(.allocationMismatch, "no allocation for this 5-tuple"))
            return nil
        }
        guard allocation.username == username else {
            shared.metrics.refused("wrong_credentials")
            reply.send(reply.error(.wrongCredentials, "the allocation belongs to another user"))
            return nil
        }
        return allocation
    }

    private func handleRefresh(_ reply: Reply, tuple: FiveTuple, username: String) {
        guard let allocation = ownedAllocation(reply, tuple: tuple, username: username) else { return }
        let requested: UInt32?
        do { requested = try reply.request.lifetime() } catch {
            reply.send(reply.error(.badRequest, error.reason))
            return
        }
        if requested == 0 {
            delete(allocation, reason: "refreshed with lifetime 0")
            reply.send(reply.success { $0.append(.lifetime, uint32: 0) })
            return
        }
        let lifetime = lifetime(requested: requested)
        scheduleExpiry(allocation, lifetime: lifetime)
        reply.send(reply.success { $0.append(.lifetime, uint32: UInt32(lifetime)) })
    }

    // MARK: Permissions and channels (RFC 8656 §9, §12)

    /// Checks a peer against the allocation's family and the address policy; sends the error.
    func admitPeer(_ peer: SocketAddress, allocation: Allocation, reply: Reply) -> IPAddress? {
        guard let ip = IPAddress(peer) else {
            reply.send(reply.error(.badRequest, "XOR-PEER-ADDRESS is not an IP address"))
            return nil
        }
        guard ip.isIPv4 == (IPAddress(allocation.relayAddress)?.isIPv4 ?? true) else {
            shared.metrics.refused("peer_family")
            reply.send(reply.error(.peerAddressFamilyMismatch, "peer \(ip) is not of the relayed address's family"))
            return nil
        }
        if let why = config.peerPolicy.refusal(for: ip) ?? shared.ownAddressRefusal(peer) {
            shared.metrics.refused("forbidden_peer")
            logRefusal("peer refused", kind: "forbidden-peer", metadata: ["user": "\(allocation.username)", "reason": "\(why)"])
            reply.send(reply.error(.forbidden, why))
            return nil
        }
        return ip
    }

    private func handleCreatePermission(_ reply: Reply, tuple: FiveTuple, username: String) {
        guard let allocation = ownedAllocation(reply, tuple: tuple, username: username) else { return }
        let peers: [SocketAddress]
        do { peers = try reply.request.xorAddresses(.xorPeerAddress) } catch {
            reply.send(reply.error(.badRequest, error.reason))
            return
        }
        guard !peers.isEmpty else {
            reply.send(reply.error(.badRequest, "XOR-PEER-ADDRESS is missing"))
            return
        }
        var admitted: [IPAddress] = []
        for peer in peers {
            guard let ip = admitPeer(peer, allocation: allocation, reply: reply) else { return }
            admitted.append(ip)
        }
        let now = NIODeadline.now()
        guard allocation.hasRoom(for: admitted, now: now) else {
            shared.metrics.refused("permissions")
            reply.send(reply.error(.insufficientCapacity, "the allocation holds its maximum of \(Allocation.maximumPermissions) permissions"))
            return
        }
        for ip in admitted { allocation.installPermission(ip, now: now) }
        publishRoutes(allocation)
        reply.send(reply.success())
    }

    private func handleChannelBind(_ reply: Reply, tuple: FiveTuple, username: String) {
        guard let allocation = ownedAllocation(reply, tuple: tuple, username: username) else { return }
        guard !allocation.isTCP else {
            reply.send(reply.error(.badRequest, "channels do not apply to TCP allocations"))
            return
        }
        let number: UInt16?
        let peer: SocketAddress?
        do {
            number = try reply.request.channelNumber()
            peer = try reply.request.xorAddress(.xorPeerAddress)
        } catch {
            reply.send(reply.error(.badRequest, error.reason))
            return
        }
        guard let number, ChannelData.validChannels.contains(number) else {
            reply.send(reply.error(.badRequest, "CHANNEL-NUMBER is missing or outside 0x4000-0x7FFF"))
            return
        }
        guard let peer else {
            reply.send(reply.error(.badRequest, "XOR-PEER-ADDRESS is missing"))
            return
        }
        guard let ip = admitPeer(peer, allocation: allocation, reply: reply) else { return }
        let now = NIODeadline.now()
        guard allocation.hasRoom(for: [ip], now: now) else {
            shared.metrics.refused("permissions")
            reply.send(reply.error(.insufficientCapacity, "the allocation holds its maximum of \(Allocation.maximumPermissions) permissions"))
            return
        }
        if let conflict = allocation.bindConflict(channel: number, peer: peer, now: now) {
            reply.send(reply.error(.badRequest, conflict))
            return
        }
        allocation.bind(channel: number, peer: peer, now: now)
        publishRoutes(allocation)
        reply.send(reply.success())
    }
}
