import NIOCore
import NIOPosix
import STUN
internal import CUDPShims
#if canImport(Glibc)
import Glibc
#endif

/// Handing UDP allocations of UDP clients to the loop's ``RelayEngine``, and keeping the
/// engine's view of their channels and permissions current.
extension TURNLoop {
    /// Whether an allocation asked for over `link` with `transport` is relayed by the engine.
    func relaysInEngine(transport: TURNTransportProtocol, link: ClientLink) -> Bool {
        engine != nil && transport == .udp && !link.isStream
    }

    /// Binds a relay socket for the engine (no SO_REUSEPORT: another program that holds the
    /// port must make the bind fail, as with NIO's) and wraps a duplicate of it in a NIO channel
    /// that never reads: the request path sends Send-indication data through it, the engine
    /// reads every datagram that arrives.
    func bindEngineRelay(address: SocketAddress) -> EventLoopFuture<Channel> {
        var storage = sockaddr_storage()
        let length = PeerKey.fill(&storage, from: address)
        let socket = withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                CUDPShims_bound_socket($0, length, Int32(TURNServer.relaySocketBuffer), 0, nil, 0)
            }
        }
        guard socket >= 0 else { return eventLoop.makeFailedFuture(IOError(errnoCode: errno, reason: "bind \(address)")) }
        let copy = dup(socket)
        guard copy >= 0 else {
            let error = IOError(errnoCode: errno, reason: "dup")
            close(socket)
            return eventLoop.makeFailedFuture(error)
        }
        let future = DatagramBootstrap(group: eventLoop)
            .channelOption(.autoRead, value: false)
            .withBoundSocket(copy)
        // Runs before the caller's callbacks, which find the socket by the channel.
        future.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel): engineRelaySockets[ObjectIdentifier(channel)] = socket
            case .failure: close(socket)
            }
        }
        return future
    }

    /// Gives a new allocation whose relay socket the engine reads to the engine: opens the
    /// client socket (the listener's address and port, connected to the client) and registers
    /// both. When the client socket cannot be opened the allocation is relayed by NIO.
    func attachEngine(_ allocation: Allocation, relaySocket: Int32) {
        // The client socket and the relay socket's duplicate are two more file descriptors:
        // two more slots of the node's connection budget, or the allocation stays on NIO.
        guard let engine, case .datagram(let listener, let client) = allocation.client, shared.budget.acquire() else {
            close(relaySocket)
            relayThroughNIO(allocation)
            return
        }
        guard shared.budget.acquire() else {
            shared.budget.release()
            close(relaySocket)
            relayThroughNIO(allocation)
            return
        }
        var local = sockaddr_storage()
        let localLength = PeerKey.fill(&local, from: allocation.tuple.server)
        var remote = sockaddr_storage()
        let remoteLength = PeerKey.fill(&remote, from: client)
        let clientSocket = withUnsafePointer(to: &local) { localPointer in
            withUnsafePointer(to: &remote) { remotePointer in
                localPointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { localAddress in
                    remotePointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { remoteAddress in
                        CUDPShims_bound_socket(localAddress, localLength, Int32(TURNServer.relaySocketBuffer), 1, remoteAddress, remoteLength)
                    }
                }
            }
        }
        guard clientSocket >= 0 else {
            shared.budget.release()
            shared.budget.release()
            logger.warning("relay engine: no client socket; relaying through NIO", metadata: [
                "client": "\(client)", "errno": "\(errno)",
            ])
            close(relaySocket)
            relayThroughNIO(allocation)
            return
        }
        nextEngineID += 1
        let id = nextEngineID
        let loop = NIOLoopBound(self, eventLoop: eventLoop)
        let owner = NIOLoopBound(allocation, eventLoop: eventLoop)
        let server = allocation.tuple.server
        let eventLoop = self.eventLoop
        let path = RelayPath(
            id: id, home: engine.index, clientSocket: clientSocket, relaySocket: relaySocket, client: client, relay: allocation.relayAddress,
            bitsPerSecond: config.maxBitsPerSecond,
            fromClient: { buffer, source in
                eventLoop.execute {
                    engine.slowPathInFlight.subtract(1, ordering: .relaxed)
                    let tuple = FiveTuple(client: source, server: server, transport: .udp)
                    loop.value.receive(buffer, from: .datagram(listener, source), tuple: tuple)
                }
            },
            fromPeer: { buffer, source in
                eventLoop.execute {
                    engine.slowPathInFlight.subtract(1, ordering: .relaxed)
                    let allocation = owner.value
                    guard loop.value.allocations[allocation.tuple] === allocation else { return }
                    loop.value.relayReceived(AddressedEnvelope(remoteAddress: source, data: buffer), allocation: allocation)
                }
            })
        allocation.enginePath = path
        engine.post(.open(path))
    }

    /// The relay channel reads for itself (the allocation stays off the engine).
    func relayThroughNIO(_ allocation: Allocation) {
        allocation.relayChannel.setOption(.autoRead, value: true).whenComplete { _ in }
        let handler = RelayHandler(loop: NIOLoopBound(self, eventLoop: eventLoop), allocation: NIOLoopBound(allocation, eventLoop: eventLoop))
        try? allocation.relayChannel.pipeline.syncOperations.addHandler(handler)
    }

    /// Tells the engine the allocation's live channels and permissions with their expiry; called
    /// after every CreatePermission and ChannelBind. Expiry needs no call: the engine compares
    /// each entry's time with its clock.
    func publishRoutes(_ allocation: Allocation) {
        guard let engine, let path = allocation.enginePath else { return }
        let now = NIODeadline.now()
        var routes = RelayRoutes()
        routesVersion += 1
        routes.version = routesVersion
        for (ip, until) in allocation.permissions where until > now {
            routes.permissions.append((PeerKey(ip.socketAddress(port: 0)), until.uptimeNanoseconds))
        }
        for (number, binding) in allocation.channels where binding.expiry > now {
            guard let ip = IPAddress(binding.peer), let permitted = allocation.permissions[ip], permitted > now else { continue }
            routes.addChannel(number: number, peer: binding.peer, until: min(binding.expiry, permitted).uptimeNanoseconds)
        }
        engine.post(.routes(path, routes), about: path)
    }

    /// The allocation ended: the engine closes its sockets.
    func detachEngine(_ allocation: Allocation) {
        guard let engine, let path = allocation.enginePath else { return }
        allocation.enginePath = nil
        engine.post(.close(path), about: path)
        shared.budget.release()
        shared.budget.release()
    }
}
