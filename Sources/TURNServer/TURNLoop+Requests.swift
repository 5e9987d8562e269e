import Foundation
import NIOCore
import NIOPosix
import STUN

/// Request processing: authentication (RFC 8489 §9.2), Binding, and the TURN methods of
/// RFC 8656 §7–§12.
extension TURNLoop {
    /// What answers a request: the response bytes go back over the link they came in on.
    /// Responses always carry FINGERPRINT: clients that multiplex STUN with media (libnice,
    /// browsers) use it to tell STUN apart (RFC 8489 §14.7).
    struct Reply {
        var link: ClientLink
        var request: STUNMessage
        var key: [UInt8]?

        func success(_ build: (inout STUNMessage) -> Void = { _ in }) -> ByteBuffer {
            var response = STUNMessage(type: STUNMessageType(request.type.method, .successResponse),
                                       transactionID: request.transactionID)
            build(&response)
            return response.encode(integrity: key, fingerprint: true, allocator: link.channel.allocator)
        }

        func error(_ code: STUNErrorCode, _ reason: String? = nil, build: (inout STUNMessage) -> Void = { _ in }) -> ByteBuffer {
            var response = STUNMessage(type: STUNMessageType(request.type.method, .errorResponse),
                                       transactionID: request.transactionID)
            response.appendErrorCode(code, reason: reason)
            build(&response)
            return response.encode(integrity: key, fingerprint: true, allocator: link.channel.allocator)
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
        guard let (username, key) = authenticate(reply) else { return }
        reply.key = key
        let unknown = request.unknownComprehensionRequired
        guard unknown.isEmpty else {
            reply.send(reply.error(.unknownAttribute) { $0.appendUnknownAttributes(unknown) })
            return
        }
        switch request.type.method {
        case .allocate: handleAllocate(reply, tuple: tuple, username: username)
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
    /// returns nil, or returns the user and the key to sign the response with.
    private func authenticate(_ reply: Reply) -> (String, [UInt8])? {
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
        guard let username, request.realm == realm, let password = shared.password(for: username) else {
            shared.metrics.authFailures.increment()
            logger.notice("authentication failed", metadata: ["user": "\(username ?? "?")", "reason": "unknown or expired user"])
            reply.send(reply.error(.unauthenticated, build: challenge))
            return nil
        }
        // RFC 8489 §14.12: PASSWORD-ALGORITHM SHA-256 asks for the SHA-256 key.
        let sha256Key = ((try? request.passwordAlgorithm()) ?? nil)?.number == STUNPasswordAlgorithm.sha256.number
        let key = sha256Key
            ? LongTermCredentials.keySHA256(username: username, realm: realm, password: password)
            : LongTermCredentials.key(username: username, realm: realm, password: password)
        guard request.verifyIntegrity(key: key) else {
            shared.metrics.authFailures.increment()
            logger.notice("authentication failed", metadata: ["user": "\(username)", "reason": "bad MESSAGE-INTEGRITY"])
            reply.send(reply.error(.unauthenticated, build: challenge))
            return nil
        }
        return (username, key)
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

    func lifetime(requested: UInt32?) -> Int {
        let asked = requested.map(Int.init) ?? config.defaultLifetime
        return max(config.defaultLifetime, min(asked, config.maximumLifetime))
    }

    private func handleAllocate(_ reply: Reply, tuple: FiveTuple, username: String) {
        let request = reply.request
        if let existing = allocations[tuple] {
            if existing.allocateTransactionID == request.transactionID {
                reply.send(existing.allocateResponse) // a retransmission (RFC 8656 §7.2)
            } else {
                shared.metrics.refused("allocation_mismatch")
                reply.send(reply.error(.allocationMismatch, "this 5-tuple already has an allocation"))
            }
            return
        }
        guard !pending.contains(tuple) else { return }
        let transport: UInt8
        var family: UInt8
        let evenPort: (reserveNext: Bool, present: Bool)
        let token: UInt64?
        let requestedLifetime: UInt32?
        do {
            guard let t = try request.requestedTransport() else {
                reply.send(reply.error(.badRequest, "REQUESTED-TRANSPORT is missing"))
                return
            }
            transport = t
            evenPort = try request.evenPort()
            token = try request.uint64(.reservationToken)
            requestedLifetime = try request.lifetime()
            let requestedFamily = try request.addressFamily(.requestedAddressFamily)
            if requestedFamily != nil && (token != nil || request.has(.additionalAddressFamily)) {
                reply.send(reply.error(.badRequest, "REQUESTED-ADDRESS-FAMILY cannot come with RESERVATION-TOKEN or ADDITIONAL-ADDRESS-FAMILY"))
                return
            }
            family = requestedFamily ?? 0x01
        } catch {
            reply.send(reply.error(.badRequest, error.reason))
            return
        }
        guard transport == 17 || transport == 6 else {
            shared.metrics.refused("wrong_transport")
            reply.send(reply.error(.unsupportedTransportProtocol, "relaying protocol \(transport) is not supported; use UDP (17) or TCP (6)"))
            return
        }
        if transport == 6 && !reply.link.isStream {
            shared.metrics.refused("wrong_transport")
            reply.send(reply.error(.badRequest, "TCP relaying (RFC 6062) needs a TCP or TLS control connection"))
            return
        }
        if token != nil && evenPort.present {
            reply.send(reply.error(.badRequest, "EVEN-PORT and RESERVATION-TOKEN are exclusive"))
            return
        }
        // RFC 8656 §7.2: a reserved port keeps the family of the allocation that reserved it.
        var claimed: Int?
        if let token {
            guard let reservation = shared.ports.claim(token: token) else {
                reply.send(reply.error(.badRequest, "unknown or expired RESERVATION-TOKEN"))
                return
            }
            claimed = reservation.port
            family = reservation.ipv6 ? 0x02 : 0x01
        }
        guard family == 0x01 || family == 0x02 else {
            reply.send(reply.error(.addressFamilyNotSupported, "unknown address family \(family)"))
            return
        }
        guard let relayIP = family == 0x01 ? shared.relayIPv4 : shared.relayIPv6 else {
            if let claimed { shared.ports.release(claimed) }
            shared.metrics.refused("address_family")
            reply.send(reply.error(.addressFamilyNotSupported, "this server has no IPv\(family == 1 ? 4 : 6) relay address"))
            return
        }
        if let why = shared.quota.acquire(user: username) {
            if let claimed { shared.ports.release(claimed) }
            shared.metrics.refused("quota")
            logger.notice("allocation refused", metadata: ["user": "\(username)", "reason": "\(why)"])
            reply.send(reply.error(.allocationQuotaReached, why))
            return
        }
        var port: Int?
        var newToken: UInt64?
        if let claimed {
            port = claimed
        } else if evenPort.reserveNext {
            if let (p, t) = shared.ports.takeEvenWithReservation(ipv6: family == 0x02) {
                port = p
                newToken = t
            }
        } else {
            port = shared.ports.take(even: evenPort.present)
        }
        guard let port else {
            shared.quota.release(user: username)
            shared.metrics.refused("capacity")
            reply.send(reply.error(.insufficientCapacity, "no relay port is free"))
            return
        }
        let reservation = newToken
        if let newToken {
            let ports = shared.ports
            eventLoop.scheduleTask(in: .seconds(30)) { ports.expire(token: newToken) }
        }
        pending.insert(tuple)
        let lifetime = lifetime(requested: requestedLifetime)
        let additionalFamilyRefused = request.has(.additionalAddressFamily)
        // A reserved port must be used as is; a pooled one may be swapped when another
        // program holds it.
        openRelay(ip: relayIP, port: port, tcp: transport == 6, retries: token == nil && newToken == nil ? 4 : 0).assumeIsolated().whenComplete { [self] result in
            pending.remove(tuple)
            switch result {
            case .failure(let error):
                shared.quota.release(user: username)
                logger.warning("relay bind failed", metadata: ["ip": "\(relayIP)", "error": "\(error)"])
                reply.send(reply.error(.insufficientCapacity, "could not open a relay socket"))
            case .success(let (relayChannel, port)):
                let relayAddress = relayIP.socketAddress(port: port)
                let allocation = Allocation(
                    tuple: tuple, username: username, key: reply.key ?? [], client: reply.link, relayAddress: relayAddress,
                    relayPort: port, isTCP: transport == 6, relayChannel: relayChannel, transactionID: request.transactionID,
                    expiry: .now(), bitsPerSecond: config.maxBitsPerSecond)
                allocations[tuple] = allocation
                attachRelay(allocation)
                scheduleExpiry(allocation, lifetime: lifetime)
                allocation.allocateResponse = reply.success {
                    $0.appendXORAddress(.xorRelayedAddress, relayAddress)
                    $0.append(.lifetime, uint32: UInt32(lifetime))
                    $0.appendXORAddress(.xorMappedAddress, tuple.client)
                    if let reservation { $0.append(.reservationToken, uint64: reservation) }
                    if additionalFamilyRefused {
                        // RFC 8656 §7.2: one family is relayed; say why the other is not.
                        var value = ByteBuffer()
                        value.writeMultipleIntegers(UInt8(0x02), UInt8(0), UInt8(4), UInt8(40))
                        value.writeString("Address Family not Supported")
                        $0.append(.addressErrorCode, buffer: value)
                    }
                }
                reply.send(allocation.allocateResponse)
                shared.metrics.allocationsCreated.increment()
                shared.metrics.allocationsActive.record(shared.quota.total)
                logger.info("allocation created", metadata: [
                    "user": "\(username)", "client": "\(tuple.client)", "transport": "\(tuple.transport.rawValue)",
                    "relay": "\(relayAddress)", "relay_transport": "\(transport == 6 ? "tcp" : "udp")", "lifetime": "\(lifetime)",
                ])
            }
        }
    }

    /// Binds the relay on `port`, moving on to other pooled ports when one is taken; the port
    /// is released on failure.
    private func openRelay(ip: IPAddress, port: Int, tcp: Bool, retries: Int) -> EventLoopFuture<(Channel, Int)> {
        bindRelay(address: ip.socketAddress(port: port), tcp: tcp).map { ($0, port) }.assumeIsolated().flatMapError { [self] error in
            shared.ports.release(port)
            guard retries > 0, let next = shared.ports.take() else { return eventLoop.makeFailedFuture(error) }
            return openRelay(ip: ip, port: next, tcp: tcp, retries: retries - 1)
        }.nonisolated()
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
        if let why = config.peerPolicy.refusal(for: ip) {
            shared.metrics.refused("forbidden_peer")
            logger.notice("peer refused", metadata: ["user": "\(allocation.username)", "reason": "\(why)"])
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
        for ip in admitted { allocation.installPermission(ip, now: now) }
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
        guard admitPeer(peer, allocation: allocation, reply: reply) != nil else { return }
        let now = NIODeadline.now()
        if let conflict = allocation.bindConflict(channel: number, peer: peer, now: now) {
            reply.send(reply.error(.badRequest, conflict))
            return
        }
        allocation.bind(channel: number, peer: peer, now: now)
        reply.send(reply.success())
    }
}
