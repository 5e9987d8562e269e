import NIOCore
import Logging
import MeshCore
import RTP
import DTLSSRTP
import Media
import Synchronization

/// One forwarded room call on the forwarding node: the forwarding core (``SelectiveForwarder``)
/// behind one DTLS-SRTP transport per participant (docs/rooms.md "The forwarding core").
///
/// Each participant's transport is the one-to-one call's (`DTLSSRTPTransport`, over the ICE
/// agent's path in a call, over any ``DatagramTransport`` in tests): the forwarder terminates
/// DTLS-SRTP per participant, so what the core sees is the clear RTP and RTCP, and what it
/// returns is protected again with the receiver's keys.
///
/// Packets are forwarded where they were decrypted — in a call, on the GLib thread that read
/// them off the socket (``ICEDatagramFeed/attach(_:tapping:)``) — under one lock that serializes
/// the core (``ForwardingState``): packets of all participants pass through it one at a time,
/// on the order of a few microseconds each. No thread is woken per packet; handing each packet
/// to a task or an actor woke one per packet, which at five participants cost more than the
/// forwarding (docs/rooms.md "Where a packet is forwarded"). The actor keeps the rest: who is
/// in, their transports' state changes, the 20 ms tick.
public actor ForwardedCall {
    /// The room call this forwards (`roomCall` of docs/protocol.md "Room calls").
    public nonisolated let id: String
    private nonisolated let state: Mutex<ForwardingState>
    private var readers: [String: Task<Void, Never>] = [:]
    /// Each participant's receive queue drops on `/metrics`: the transport's, and what its
    /// session reads of the queues before it (the ICE agent's and the copy's).
    private var queueDrops: [String: (meter: ReceiveQueueDropMeter, upstream: @Sendable () -> ReceiveQueueDrops)] = [:]
    private var lastDropReport: Duration = .zero
    /// Each participant's transport state changes on their way to the actor (its packets are
    /// forwarded where they were decrypted, ``add(_:transport:sources:extensions:upstreamDrops:)``).
    private var stateQueues: [String: BoundedEventStream<TransportEvent>] = [:]
    /// How often the receive queue drops are added to `/metrics`.
    static let dropReportInterval: Duration = .seconds(1)
    private var ticker: Task<Void, Never>?
    private let metrics: ForwarderMetrics
    private let logger: Logger
    private nonisolated let epoch = ContinuousClock.now
    private var lastLayerLog: Duration = .zero
    /// How often the receivers' layers are logged.
    static let layerLogInterval: Duration = .seconds(5)
    /// What happened to the participants, for the session layer that renegotiates at each
    /// change (docs/protocol.md "Room calls", *Forwarded mode* item 4).
    public nonisolated let changes: AsyncStream<Change>
    private let changeSink: AsyncStream<Change>.Continuation

    /// The most changes kept for a consumer of ``changes`` that does not read (2 per participant
    /// of a full call, with room to spare).
    public static let maxBufferedChanges = 64

    /// A participant's DTLS session came up (its streams can be offered to the others now), it
    /// left, or it added or stopped a stream (its later offer: a screen share).
    public enum Change: Sendable, Equatable {
        case connected(String)
        case left(String)
        case streamsChanged(String)
    }

    /// A forwarded call with no participant yet; `tick` runs every 20 ms until ``close()``.
    public init(id: String, configuration: ForwardingConfiguration = ForwardingConfiguration(), logger: Logger = Logger(label: "meshnode.forwarder")) {
        self.id = id
        self.logger = logger
        let metrics = ForwarderMetrics()
        self.metrics = metrics
        state = Mutex(ForwardingState(id: id, core: SelectiveForwarder(configuration: configuration), metrics: metrics, logger: logger))
        // Bounded: a consumer that stops reading costs at most this many changes; the session
        // layer re-reads the participants at each one, so only the newest matter.
        (changes, changeSink) = AsyncStream.makeStream(of: Change.self, bufferingPolicy: .bufferingNewest(Self.maxBufferedChanges))
        metrics.callsChanged(by: 1)
    }

    /// The participants now.
    public var participants: [String] { state.withLock { $0.transports.keys.sorted() } }

    private nonisolated var now: Duration { ContinuousClock.now - epoch }

    /// What the core did so far.
    public var counters: ForwarderCounters { state.withLock { $0.core.counters } }

    /// Who speaks now (RFC 6464 levels), loudest first.
    public var speakers: [ForwardingSpeaker] {
        let time = now
        return state.withLock { $0.core.speakers(now: time) }
    }

    /// Adds a participant whose DTLS-SRTP transport is started (its handshake may still run):
    /// its packets go to the core from now on, and it leaves when the transport fails or the peer
    /// closes it.
    /// `upstreamDrops` reads the drops of the queues in front of the transport (its ICE
    /// agent's), which go to `/metrics` with the transport's own.
    /// - Throws: ``MediaError`` from the core (a bound, a conflicting id or SSRC).
    public func add(_ participant: String, transport: DTLSSRTPTransport, sources: [ForwardedSource], extensions: ForwardingExtensionIDs,
                    upstreamDrops: @escaping @Sendable () -> ReceiveQueueDrops = { ReceiveQueueDrops() }) throws {
        let time = now
        let reporterSSRC = try state.withLock { state in
            try state.core.addParticipant(participant, sources: sources, extensions: extensions, now: time)
            state.transports[participant] = transport
            let uplink = UplinkFeedback(extensions: extensions)
            state.uplinks[participant] = uplink
            return uplink.reporterSSRC
        }
        queueDrops[participant] = (ReceiveQueueDropMeter(), upstreamDrops)
        metrics.participantsChanged(by: 1)
        // Each packet carries the time it came off the socket (libnice's receive callback,
        // ``TransportEvent/rtp(_:arrival:)``); where the transport decrypts it, ``UplinkStamper``
        // makes the uplink's transport-cc feedback from those times and sends it at once, then
        // hands the packet to ``forward(_:packet:from:arrival:)`` on the same thread. The
        // feedback must carry when a packet arrived, not when the forwarding, or even the ICE and
        // transport queues, got to it: the sender's delay-based estimate reads such a backlog as
        // a queue on its path and backs off, and a probe's packets look spread out (docs/rooms.md
        // "Chromium's top layer" and "Arrival times are taken at the socket"). The transport's
        // state changes go to the actor through a queue bounded like the transport's own.
        // No packet goes into the queue: its data bound is never reached.
        let (states, stateSink) = BoundedEventStream<TransportEvent>.makeStream(dataBound: 1, isData: \.isData)
        stateQueues[participant] = states
        let uplink = UplinkStamper(
            feedback: UplinkTransportFeedback(reporterSSRC: reporterSSRC, extensionID: extensions.transportWideCC, epoch: epoch),
            transport: transport, states: stateSink,
            forward: ForwardedPacketSink { [weak self] event, packet, arrival in
                self?.forward(event, packet: packet, from: participant, arrival: arrival)
            },
            logger: logger, label: "\(id): \(participant)")
        transport.deliverPackets { [uplink] event in uplink.stamp(event) }
        readers[participant] = Task { [weak self] in
            await withDiscardingTaskGroup { group in
                group.addTask {
                    // The transport's state changes, and packets it queued before the hand-over.
                    for await event in transport.events { uplink.stamp(event) }
                    uplink.finish()
                }
                for await event in states {
                    guard let self, await self.handle(event, from: participant) else { break }
                }
                group.cancelAll()
            }
            await self?.remove(participant, reason: "its transport ended")
        }
        if ticker == nil {
            ticker = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(20))
                    await self?.tick()
                }
            }
        }
    }

    /// The streams the forwarder sends `participant` (for the `a=ssrc` lines of its SDP).
    public func outgoingStreams(to participant: String) -> [ForwardedStreamDescription] {
        state.withLock { $0.core.outgoingStreams(to: participant) }
    }

    /// `participant`'s SDP now has the m-section for the outgoing stream `ssrc`.
    /// - Throws: ``MediaError`` for an unknown participant or stream.
    public func bind(_ participant: String, ssrc: UInt32, _ binding: ForwardingBinding) throws {
        try state.withLock { try $0.core.bind(receiver: participant, ssrc: ssrc, binding) }
    }

    /// `participant` sends `source` from now on (a stream its later offer added): every other
    /// participant gets an outgoing stream for it, offered by the session layer at this change.
    /// - Throws: ``MediaError`` from the core (a bound, an SSRC in use, simulcast).
    public func addSource(_ source: ForwardedSource, to participant: String) throws {
        try state.withLock { try $0.core.addSource(source, to: participant) }
        changeSink.yield(.streamsChanged(participant))
    }

    /// `participant` stopped sending `ssrc` (its later offer set the section to port 0 or stopped
    /// sending there): the others get a BYE for it, and their next offer withdraws its section.
    public func removeSource(_ ssrc: UInt32, of participant: String) {
        state.withLock { state in state.send(state.record { $0.removeSource(ssrc, of: participant) }) }
        changeSink.yield(.streamsChanged(participant))
    }

    /// Takes `participant` out: the others get a BYE for its streams; its transport is closed.
    public func remove(_ participant: String, reason: String) {
        guard state.withLock({ $0.transports[participant] }) != nil else { return }
        reportQueueDrops(of: participant)
        let transport = state.withLock { state -> DTLSSRTPTransport? in
            let transport = state.transports.removeValue(forKey: participant)
            state.uplinks[participant] = nil
            state.send(state.record { $0.removeParticipant(participant) })
            return transport
        }
        queueDrops[participant] = nil
        stateQueues[participant] = nil
        readers.removeValue(forKey: participant)?.cancel()
        metrics.participantsChanged(by: -1)
        logger.info("forwarded call \(id): \(participant) left (\(reason))")
        transport?.close()
        changeSink.yield(.left(participant))
    }

    /// Ends the call: every participant's transport is closed.
    public func close() {
        for participant in state.withLock({ Array($0.transports.keys) }) { remove(participant, reason: "the call ended") }
        ticker?.cancel()
        ticker = nil
        state.withLock { $0.updateSqueezed() }
        changeSink.finish()
        metrics.callsChanged(by: -1)
    }

    /// A participant's packet, forwarded on the thread that decrypted it (``UplinkStamper``).
    private nonisolated func forward(_ event: TransportEvent, packet: RTPPacket?, from participant: String, arrival: ContinuousClock.Instant) {
        let time = now
        state.withLock { $0.receive(event, packet: packet, from: participant, now: time, arrived: arrival - epoch) }
    }

    /// A state change of a participant's transport; false when the transport is done.
    private func handle(_ event: TransportEvent, from participant: String) -> Bool {
        guard state.withLock({ $0.transports[participant] }) != nil else { return false }
        switch event {
        case .rtp, .rtcp: return true  // forwarded where they were stamped
        case .connected: changeSink.yield(.connected(participant))
        case .failed, .closedByPeer: return false
        }
        return true
    }

    private func tick() {
        let time = now
        state.withLock { $0.tick(now: time) }
        if time - lastLayerLog >= Self.layerLogInterval {
            lastLayerLog = time
            state.withLock { $0.logLayers() }
        }
        if time - lastDropReport >= Self.dropReportInterval {
            lastDropReport = time
            for participant in Array(queueDrops.keys) { reportQueueDrops(of: participant) }
        }
    }

    /// Adds what `participant`'s receive queues dropped since the last report to `/metrics`.
    private func reportQueueDrops(of participant: String) {
        guard let transport = state.withLock({ $0.transports[participant] }), let upstream = queueDrops[participant]?.upstream else { return }
        var totals = upstream()
        totals.transport = transport.statistics.receiveQueueDrops
        queueDrops[participant]?.meter.report(totals)
    }
}
