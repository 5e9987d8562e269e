import Foundation
import Logging
import MeshCore
import NIOCore
import STUN
internal import CUDPShims

/// The allocations of one event loop and the request processing for the clients on it.
///
/// UDP listeners are sharded per loop with SO_REUSEPORT and each TCP connection lives on one
/// loop, so a client's allocation, its relay socket and its listener share a thread: the data
/// path takes no lock.
final class TURNLoop {
    let eventLoop: EventLoop
    let shared: TURNShared
    var allocations: [FiveTuple: Allocation] = [:]
    /// 5-tuples whose Allocate waits for its relay socket to bind.
    var pending: Set<FiveTuple> = []
    /// UDP allocations by client address and listener, for the data path (``DatagramClientKey``).
    var datagramAllocations: [DatagramClientKey: Allocation] = [:]
    var tally = RelayTally()
    /// Stream channels written to in this turn, and the outboxes that hold relayed datagrams.
    private var unflushed: [ObjectIdentifier: Channel] = [:]
    private var outboxes: [DatagramOutbox] = []
    private var flushScheduled = false
    /// Whether relayed datagrams are coalesced with UDP GSO (``DatagramOutbox``): where the
    /// kernel has it, until it refuses a segmented write once.
    private(set) var gso: Bool
    private var metricsTimer: RepeatedTask?
    /// The thread that relays UDP allocations of UDP clients (``RelayEngine``); nil when
    /// ``TURNServerConfiguration/relayEngine`` is off or the system has no epoll.
    let engine: RelayEngine?
    /// Numbers the allocations handed to the engine.
    var nextEngineID = 0
    /// Numbers the route updates posted to the engine (``RelayRoutes/version``).
    var routesVersion: UInt64 = 0
    /// Relay sockets bound for the engine, by the NIO channel that shares them, until their
    /// allocation is made.
    var engineRelaySockets: [ObjectIdentifier: Int32] = [:]
    /// Refusals that anyone can cause (failed authentication, quota, forbidden peers) are logged
    /// once per interval and kind on this loop, with a count of those left out; metrics count all.
    private var logLimits = LogLimiter()

    var config: TURNServerConfiguration { shared.config }
    var logger: Logger { shared.logger }

    init(eventLoop: EventLoop, shared: TURNShared) {
        self.eventLoop = eventLoop
        self.shared = shared
        self.gso = shared.config.segmentationOffload && System.supportsUDPSegmentationOffload
        // Unlike NIO, the engine survives a refused segmented write (it falls back to plain
        // sends), so it uses GSO wherever the kernel has it.
        self.engine = shared.config.relayEngine
            ? RelayEngine(logger: shared.logger, metrics: shared.metrics, gso: System.supportsUDPSegmentationOffload,
                          group: shared.engines) : nil
    }

    func start() {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.execute {
            CUDPShims_thread_set_name("mn-turn-loop")
            adoptProcessNiceness(logger: bound.value.logger, thread: "TURN event loop")
        }
        engine?.start(name: "mn-turn-relay")
        metricsTimer = eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            bound.value.tally.flush(into: bound.value.shared.metrics)
        }
    }

    func stop() {
        metricsTimer?.cancel()
        for allocation in Array(allocations.values) { delete(allocation, reason: "server shutdown") }
        engine?.post(.stop)
    }

    /// Logs a refusal at notice level unless one of its kind was logged on this loop within
    /// `LogLimiter.interval`; the line says how many were left out since.
    func logRefusal(_ message: Logger.Message, kind: String, metadata: Logger.Metadata) {
        guard let suppressed = logLimits.allow(kind, now: .now) else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.notice(message, metadata: metadata)
    }

    // MARK: Flushing

    /// Remembers a channel written to without a flush. All of them are flushed once, after the
    /// event loop has handled every socket that was readable in this turn: a listener that
    /// answers many relay sockets then hands the kernel one sendmmsg batch instead of one
    /// sendmsg per relay socket.
    func markUnflushed(_ channel: Channel) {
        unflushed[ObjectIdentifier(channel)] = channel
        scheduleFlush()
    }

    /// Remembers an outbox that holds datagrams; emptied with the unflushed channels.
    private func markUnflushed(_ outbox: DatagramOutbox) {
        guard !outbox.scheduled else { return }
        outbox.scheduled = true
        outboxes.append(outbox)
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.execute { bound.value.flushPending() }
    }

    func flushPending() {
        flushScheduled = false
        if !outboxes.isEmpty {
            // Every outbox writes first, then each channel is flushed once: the outboxes of
            // many clients on one listener leave in one sendmmsg.
            for outbox in outboxes { outbox.emit() }
            for outbox in outboxes {
                outbox.scheduled = false
                tally.segmentedDatagrams += outbox.segmented
                outbox.segmented = 0
                unflushed[ObjectIdentifier(outbox.channel)] = outbox.channel
            }
            outboxes.removeAll(keepingCapacity: true)
        }
        guard !unflushed.isEmpty else { return }
        for channel in unflushed.values { channel.flush() }
        unflushed.removeAll(keepingCapacity: true)
    }

    /// A segmented write failed. When the kernel refused it (a device without checksum
    /// offload, a path MTU below a segment) this loop sends datagrams one by one from now on;
    /// a write to a relay socket closed meanwhile says nothing about GSO.
    func gsoFailed(_ error: Error) {
        guard gso, let error = error as? IOError, [EINVAL, EIO, EMSGSIZE, ENOPROTOOPT, EOPNOTSUPP].contains(error.errnoCode) else { return }
        gso = false
        logger.warning("UDP segmentation offload (GSO) failed; relaying without it", metadata: ["error": "\(error)"])
    }

    /// Makes the outboxes of a new UDP allocation and indexes it for the data path.
    func attachOutboxes(_ allocation: Allocation) {
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let failed = { (error: Error) in bound.value.gsoFailed(error) }
        if !allocation.isTCP { allocation.toPeer = DatagramOutbox(channel: allocation.relayChannel, gsoFailed: failed) }
        if case .datagram(let listener, let client) = allocation.client {
            allocation.toClient = (DatagramOutbox(channel: listener, gsoFailed: failed), client)
            if let key = DatagramClientKey(listener: ObjectIdentifier(listener), client: client) {
                datagramAllocations[key] = allocation
            }
        }
    }

    /// The allocation a datagram from `client` on `listener` belongs to, found without hashing
    /// socket addresses (the ChannelData path).
    func datagramAllocation(listener: ObjectIdentifier, client: SocketAddress) -> Allocation? {
        guard let key = DatagramClientKey(listener: listener, client: client),
              let allocation = datagramAllocations[key], allocation.tuple.client == client else { return nil }
        return allocation
    }

    // MARK: Entry points from the listeners

    /// A STUN message or ChannelData from a client.
    func receive(_ buffer: ByteBuffer, from link: ClientLink, tuple: FiveTuple) {
        if ChannelData.looksLikeChannelData(buffer) {
            receiveChannelData(buffer, tuple: tuple)
            return
        }
        let message: STUNMessage
        do {
            message = try STUNMessage(parsing: buffer)
        } catch {
            shared.metrics.malformed.increment()
            logger.debug("dropped malformed STUN", metadata: ["client": "\(tuple.client)", "error": "\(error)"])
            return
        }
        switch message.type.messageClass {
        case .request:
            handleRequest(message, link: link, tuple: tuple)
        case .indication where message.type.method == .send:
            receiveSendIndication(message, tuple: tuple)
        default:
            break // RFC 8489 §6.3.2: other indications and stray responses are dropped.
        }
    }

    /// The client's connection closed: allocations made over it end (RFC 8656 §3.1, RFC 6062 §5).
    func clientClosed(_ tuple: FiveTuple) {
        if let allocation = allocations[tuple] { delete(allocation, reason: "client connection closed") }
    }

    // MARK: Data path, client → peer

    private func receiveChannelData(_ buffer: ByteBuffer, tuple: FiveTuple) {
        guard let allocation = allocations[tuple] else { return }
        receiveChannelData(buffer, allocation: allocation)
    }

    /// ChannelData from the allocation's client (RFC 8656 §12.5): relayed to the channel's peer
    /// when the channel is bound and the peer has a permission, else dropped.
    func receiveChannelData(_ buffer: ByteBuffer, allocation: Allocation) {
        guard !allocation.isTCP, let frame = try? ChannelData(parsing: buffer) else { return }
        guard let peer = allocation.relayPeer(forChannel: frame.channel, now: .now()) else {
            tally.droppedNoPermission += 1
            return
        }
        sendToPeer(frame.data, peer: peer, allocation: allocation)
    }

    private func receiveSendIndication(_ message: STUNMessage, tuple: FiveTuple) {
        guard let allocation = allocations[tuple], !allocation.isTCP,
              let peer = try? message.xorAddress(.xorPeerAddress), let data = message.attribute(.data),
              let ip = IPAddress(peer), let port = peer.port else { return }
        guard allocation.hasPermission(ip, now: .now()) else {
            tally.droppedNoPermission += 1
            return
        }
        // A permission is for an IP, every port (RFC 8656 §9): on the server's own IP only
        // some ports may be relayed to, so the port is checked per packet. Channels were
        // checked when bound.
        guard shared.ownAddressRefusal(ip: ip, port: port) == nil else {
            tally.droppedForbiddenPeer += 1
            return
        }
        sendToPeer(data, peer: peer, allocation: allocation)
    }

    private func sendToPeer(_ data: ByteBuffer, peer: SocketAddress, allocation: Allocation) {
        guard allocation.admit(data.readableBytes, toPeer: true) else {
            tally.droppedOverBandwidth += 1
            return
        }
        tally.packetsToPeer += 1
        tally.bytesToPeer += data.readableBytes
        if let outbox = allocation.toPeer {
            outbox.add(data, to: peer, gso: gso)
            markUnflushed(outbox)
        } else {
            allocation.relayChannel.write(AddressedEnvelope(remoteAddress: peer, data: data), promise: nil)
            markUnflushed(allocation.relayChannel)
        }
    }

    // MARK: Data path, peer → client

    /// A datagram from a peer arrived at an allocation's relayed address (RFC 8656 §11.3).
    func relayReceived(_ envelope: AddressedEnvelope<ByteBuffer>, allocation: Allocation) {
        let route = allocation.route(fromPeer: envelope.remoteAddress, now: .now())
        guard route != .refused else {
            tally.droppedNoPermission += 1
            return
        }
        guard allocation.admit(envelope.data.readableBytes, toPeer: false) else {
            tally.droppedOverBandwidth += 1
            return
        }
        tally.packetsToClient += 1
        tally.bytesToClient += envelope.data.readableBytes
        if case .channel(let number) = route, let toClient = allocation.toClient {
            toClient.outbox.addChannelData(channel: number, data: envelope.data, to: toClient.address, gso: gso)
            markUnflushed(toClient.outbox)
            return
        }
        var out: ByteBuffer
        if case .channel(let number) = route {
            out = allocation.relayChannel.allocator.buffer(capacity: envelope.data.readableBytes + 8)
            ChannelData.write(channel: number, data: envelope.data, padded: allocation.client.isStream, into: &out)
        } else {
            var indication = STUNMessage(type: STUNMessageType(.data, .indication))
            indication.appendXORAddress(.xorPeerAddress, envelope.remoteAddress)
            indication.append(.data, buffer: envelope.data)
            out = indication.encode(allocator: allocation.relayChannel.allocator)
        }
        if let toClient = allocation.toClient {
            toClient.outbox.add(out, to: toClient.address, gso: gso)
            markUnflushed(toClient.outbox)
        } else {
            allocation.client.send(out, flush: false)
            markUnflushed(allocation.client.channel)
        }
    }

    // MARK: Lifetime

    func scheduleExpiry(_ allocation: Allocation, lifetime: Int) {
        allocation.expiryTimer?.cancel()
        allocation.expiry = .now() + .seconds(Int64(lifetime))
        let bound = NIOLoopBound((self, allocation), eventLoop: eventLoop)
        allocation.expiryTimer = eventLoop.scheduleTask(deadline: allocation.expiry) {
            let (loop, allocation) = bound.value
            loop.delete(allocation, reason: "lifetime expired")
        }
    }

    func delete(_ allocation: Allocation, reason: String) {
        guard allocations[allocation.tuple] === allocation else { return }
        allocations[allocation.tuple] = nil
        if case .datagram(let listener, let client) = allocation.client,
           let key = DatagramClientKey(listener: ObjectIdentifier(listener), client: client),
           datagramAllocations[key] === allocation {
            datagramAllocations[key] = nil
        }
        allocation.expiryTimer?.cancel()
        detachEngine(allocation)
        allocation.relayChannel.close(promise: nil)
        for channel in allocation.peerChannels.values { channel.close(promise: nil) }
        shared.ports.release(allocation.relayPort)
        shared.quota.release(user: allocation.identity)
        shared.metrics.allocationsActive.record(shared.quota.total)
        // A TCP or TLS connection outlives its allocation only by the idle timeout.
        if case .stream(let channel) = allocation.client, channel.isActive,
           let handler = try? channel.pipeline.syncOperations.handler(type: TURNStreamHandler.self) {
            handler.allocationEnded(channel: channel)
        }
        logger.info("allocation deleted", metadata: [
            "client": "\(allocation.tuple.client)", "relay": "\(allocation.relayAddress)", "reason": "\(reason)",
        ])
    }
}
