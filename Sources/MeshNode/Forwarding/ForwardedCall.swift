import NIOCore
import Logging
import MeshCore
import RTP
import DTLSSRTP
import Media

/// One forwarded room call on the forwarding node: the forwarding core (``SelectiveForwarder``)
/// behind one DTLS-SRTP transport per participant (docs/rooms.md "The forwarding core").
///
/// Each participant's transport is the one-to-one call's (`DTLSSRTPTransport`, over the ICE
/// agent's path in a call, over any ``DatagramTransport`` in tests): the forwarder terminates
/// DTLS-SRTP per participant, so what the core sees is the clear RTP and RTCP, and what it
/// returns is protected again with the receiver's keys. The actor serializes the core: packets of
/// all participants pass through it one at a time, on the order of a few microseconds each.
public actor ForwardedCall {
    /// The room call this forwards (`roomCall` of docs/protocol.md "Room calls").
    public nonisolated let id: String
    private var core: SelectiveForwarder
    private var transports: [String: DTLSSRTPTransport] = [:]
    private var readers: [String: Task<Void, Never>] = [:]
    /// The forwarder's own reports and transport-cc feedback on each participant's uplink.
    private var uplinks: [String: UplinkFeedback] = [:]
    /// Each participant's receive queue drops on `/metrics`: the transport's, and what its
    /// session reads of the queues before it (the ICE agent's and the copy's).
    private var queueDrops: [String: (meter: ReceiveQueueDropMeter, upstream: @Sendable () -> ReceiveQueueDrops)] = [:]
    private var lastDropReport: Duration = .zero
    /// Each participant's stamped packets on their way to the actor (``add(_:transport:sources:extensions:upstreamDrops:)``).
    private var stampedQueues: [String: BoundedEventStream<StampedTransportEvent>] = [:]
    /// How many stamped packets may wait for the actor, as many as the ICE agent's queue holds.
    static let stampedQueueBound = 1024
    /// How often the receive queue drops are added to `/metrics`.
    static let dropReportInterval: Duration = .seconds(1)
    private var ticker: Task<Void, Never>?
    private let metrics = ForwarderMetrics()
    private let logger: Logger
    private var limiter = LogLimiter()
    private let epoch = ContinuousClock.now
    private var lastLayerLog: Duration = .zero
    /// This call's share of the paused-video and withheld-audio gauges.
    private var squeezed: (pausedVideo: Int, withheldAudio: Int) = (0, 0)
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
        core = SelectiveForwarder(configuration: configuration)
        self.logger = logger
        // Bounded: a consumer that stops reading costs at most this many changes; the session
        // layer re-reads the participants at each one, so only the newest matter.
        (changes, changeSink) = AsyncStream.makeStream(of: Change.self, bufferingPolicy: .bufferingNewest(Self.maxBufferedChanges))
        metrics.callsChanged(by: 1)
    }

    /// The participants now.
    public var participants: [String] { transports.keys.sorted() }

    private var now: Duration { ContinuousClock.now - epoch }

    /// What the core did so far.
    public var counters: ForwarderCounters { core.counters }

    /// Who speaks now (RFC 6464 levels), loudest first.
    public var speakers: [ForwardingSpeaker] { core.speakers(now: now) }

    /// Adds a participant whose DTLS-SRTP transport is started (its handshake may still run):
    /// its packets go to the core from now on, and it leaves when the transport fails or the peer
    /// closes it.
    /// `upstreamDrops` reads the drops of the queues in front of the transport (its ICE
    /// agent's), which go to `/metrics` with the transport's own.
    /// - Throws: ``MediaError`` from the core (a bound, a conflicting id or SSRC).
    public func add(_ participant: String, transport: DTLSSRTPTransport, sources: [ForwardedSource], extensions: ForwardingExtensionIDs,
                    upstreamDrops: @escaping @Sendable () -> ReceiveQueueDrops = { ReceiveQueueDrops() }) throws {
        try core.addParticipant(participant, sources: sources, extensions: extensions, now: now)
        transports[participant] = transport
        uplinks[participant] = UplinkFeedback(extensions: extensions)
        queueDrops[participant] = (ReceiveQueueDropMeter(), upstreamDrops)
        metrics.participantsChanged(by: 1)
        // Each packet carries the time it came off the socket (libnice's receive callback,
        // ``TransportEvent/rtp(_:arrival:)``); where the transport decrypts it, before this
        // actor, which forwards every participant's packets in turn, ``UplinkStamper`` makes the
        // uplink's transport-cc feedback from those times and sends it at once. The feedback
        // must carry when a packet arrived, not when the actor, or even the ICE and transport
        // queues, got to it: the sender's delay-based estimate reads such a backlog as a queue
        // on its path and backs off, and a probe's packets look spread out (docs/rooms.md
        // "Chromium's top layer" and "Arrival times are taken at the socket"). The queue to the
        // actor is bounded like the transport's own; what it drops counts as the transport's.
        let (stamped, stamper) = BoundedEventStream<StampedTransportEvent>.makeStream(dataBound: Self.stampedQueueBound, isData: \.isData)
        stampedQueues[participant] = stamped
        let uplink = UplinkStamper(
            feedback: UplinkTransportFeedback(reporterSSRC: uplinks[participant]!.reporterSSRC, extensionID: extensions.transportWideCC, epoch: epoch),
            transport: transport, stamper: stamper, logger: logger, label: "\(id): \(participant)")
        transport.deliverPackets { [uplink] event in uplink.stamp(event) }
        readers[participant] = Task { [weak self] in
            await withDiscardingTaskGroup { group in
                group.addTask {
                    // The transport's state changes, and packets it queued before the hand-over.
                    for await event in transport.events { uplink.stamp(event) }
                    uplink.finish()
                }
                for await stampedEvent in stamped {
                    guard let self, await self.handle(stampedEvent.event, packet: stampedEvent.packet, from: participant, arrival: stampedEvent.arrival) else { break }
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
    public func outgoingStreams(to participant: String) -> [ForwardedStreamDescription] { core.outgoingStreams(to: participant) }

    /// `participant`'s SDP now has the m-section for the outgoing stream `ssrc`.
    /// - Throws: ``MediaError`` for an unknown participant or stream.
    public func bind(_ participant: String, ssrc: UInt32, _ binding: ForwardingBinding) throws {
        try core.bind(receiver: participant, ssrc: ssrc, binding)
    }

    /// `participant` sends `source` from now on (a stream its later offer added): every other
    /// participant gets an outgoing stream for it, offered by the session layer at this change.
    /// - Throws: ``MediaError`` from the core (a bound, an SSRC in use, simulcast).
    public func addSource(_ source: ForwardedSource, to participant: String) throws {
        try core.addSource(source, to: participant)
        changeSink.yield(.streamsChanged(participant))
    }

    /// `participant` stopped sending `ssrc` (its later offer set the section to port 0 or stopped
    /// sending there): the others get a BYE for it, and their next offer withdraws its section.
    public func removeSource(_ ssrc: UInt32, of participant: String) {
        send(record { $0.removeSource(ssrc, of: participant) })
        changeSink.yield(.streamsChanged(participant))
    }

    /// Takes `participant` out: the others get a BYE for its streams; its transport is closed.
    public func remove(_ participant: String, reason: String) {
        guard let transport = transports[participant] else { return }
        reportQueueDrops(of: participant)
        transports[participant] = nil
        queueDrops[participant] = nil
        stampedQueues[participant] = nil
        readers.removeValue(forKey: participant)?.cancel()
        uplinks[participant] = nil
        metrics.participantsChanged(by: -1)
        logger.info("forwarded call \(id): \(participant) left (\(reason))")
        send(record { $0.removeParticipant(participant) })
        transport.close()
        changeSink.yield(.left(participant))
    }

    /// Ends the call: every participant's transport is closed.
    public func close() {
        for participant in Array(transports.keys) { remove(participant, reason: "the call ended") }
        ticker?.cancel()
        ticker = nil
        updateSqueezed()
        changeSink.finish()
        metrics.callsChanged(by: -1)
    }

    /// One event of a participant's transport, whose packet came off the socket at `arrival`
    /// (a state change: when it was read); false when the
    /// transport is done. The copies are protected and sent here, on the actor: the transport-wide
    /// number each gets is stamped with the send time now, and the receiver's delay-based
    /// estimate reads any wait between the two as a queue on its path (sending them from the
    /// participants' tasks instead made a non-squeezed receiver's estimate fall in
    /// `testnet/squeeze`, session 11).
    private func handle(_ event: TransportEvent, packet parsed: RTPPacket?, from participant: String, arrival: ContinuousClock.Instant) -> Bool {
        guard transports[participant] != nil else { return false }
        let time = now
        // The core keeps the actor's clock (it runs forward across participants); the uplink's
        // feedback and reports, each of one participant, take the packet's own arrival.
        let arrived = arrival - epoch
        switch event {
        case .rtp(let bytes, _):
            do {
                let packet = try parsed ?? RTPPacket(parsing: bytes)
                // The core first: a simulcast layer's first packet teaches it the layer's SSRC,
                // which the uplink's reports then cover.
                var outputs: [ForwarderOutput] = []
                var refusal: (any Error)?
                do { outputs = try recordThrowing { try $0.forward(packet, from: participant, now: time) } } catch { refusal = error }
                uplinks[participant]?.received(packet, bytes: bytes.readableBytes, source: core.sourceKind(of: packet.ssrc, from: participant), now: arrived)
                if let refusal { refused(refusal, from: participant) } else { send(outputs) }
            } catch {
                refused(error, from: participant)
            }
        case .rtcp(let bytes, _):
            do {
                // Parsed once, for the uplink's own reports and for the core.
                let packets = try recordThrowing { try $0.parseRTCP(bytes, from: participant) }
                uplinks[participant]?.received(rtcp: packets, now: arrived)
                let result = try recordThrowing { try $0.handleRTCP(packets, from: participant, now: time) }
                for refusal in result.refusals { refused(refusal, from: participant) }
                send(result.outputs)
            } catch {
                refused(error, from: participant)
            }
        case .connected:
            changeSink.yield(.connected(participant))
        case .failed, .closedByPeer:
            return false
        }
        return true
    }

    private func tick() {
        let time = now
        send(record { $0.tick(now: time) })
        updateSqueezed()
        if time - lastLayerLog >= Self.layerLogInterval {
            lastLayerLog = time
            logLayers()
        }
        if time - lastDropReport >= Self.dropReportInterval {
            lastDropReport = time
            for participant in Array(queueDrops.keys) { reportQueueDrops(of: participant) }
        }
        for participant in Array(uplinks.keys) {
            guard let packets = uplinks[participant]?.due(now: time), !packets.isEmpty else { continue }
            send([.rtcp(to: participant, packets)])
        }
    }

    /// Adds what `participant`'s receive queues dropped since the last report to `/metrics`.
    private func reportQueueDrops(of participant: String) {
        guard let transport = transports[participant], let upstream = queueDrops[participant]?.upstream else { return }
        var totals = upstream()
        totals.transport = transport.statistics.receiveQueueDrops + (stampedQueues[participant]?.droppedData ?? 0)
        queueDrops[participant]?.meter.report(totals)
    }

    private func updateSqueezed() {
        let current = core.squeezedStreams
        metrics.squeezeChanged(video: current.pausedVideo - squeezed.pausedVideo, audio: current.withheldAudio - squeezed.withheldAudio)
        squeezed = current
    }

    /// One line per receiver with simulcast senders: its estimate and the layer of each sender
    /// (`h→f` while a switch waits for its key frame), so that an operator sees why a receiver
    /// gets what it gets.
    private func logLayers() {
        for (participant, uplink) in uplinks.sorted(by: { $0.key < $1.key }) {
            logger.info("forwarded call \(id): \(participant)'s uplink so far: \(uplink.counts)")
        }
        for receiver in transports.keys.sorted() {
            let states = core.layerStates(to: receiver)
            guard !states.isEmpty, let estimate = core.estimate(of: receiver) else { continue }
            func kbps(_ value: Double?) -> String { value.map { String(Int($0 / 1000)) } ?? "-" }
            let layers = states.map { state in
                let rids = core.simulcastRIDs(of: state.sender)
                let target = state.target < rids.count ? rids[state.target] : "?"
                if state.paused { return "\(state.sender) paused" }
                return "\(state.sender) \(state.rid ?? "-")\(state.rid == target ? "" : "→\(target)")"
            }
            let withheld = core.withheldVoices(to: receiver)
            logger.info("forwarded call \(id): \(receiver) estimate \(kbps(estimate.target)) kb/s (delay \(kbps(estimate.delayBased)), loss \(kbps(estimate.lossBased)), acknowledged \(kbps(estimate.acknowledged))); layers \(layers.joined(separator: ", "))\(withheld.isEmpty ? "" : "; voices withheld: \(withheld.joined(separator: ", "))")")
        }
    }

    private func send(_ outputs: [ForwarderOutput]) {
        for output in outputs {
            do {
                switch output {
                case .rtp(let to, let packet):
                    try transports[to]?.sendRTP(try packet.serialized())
                case .rtcp(let to, let packets):
                    try transports[to]?.sendRTCP(try RTCPPacket.serializeCompound(packets))
                }
            } catch {
                // A receiver whose transport cannot send now (handshake still running) misses the packet, as on a lossy path.
                if let left = limiter.allow("send", now: .now) { logger.debug("forwarded call \(id): \(error.errorReason) (\(left) like it left out)") }
            }
        }
    }

    private func refused(_ error: any Error, from participant: String) {
        if let left = limiter.allow("refused-\(participant)", now: .now) {
            logger.notice("forwarded call \(id): refused from \(participant): \(error.errorReason) (\(left) like it left out)")
        }
    }

    /// Runs `body` on the core and adds the counters' growth to `/metrics`.
    private func record<T>(_ body: (inout SelectiveForwarder) -> T) -> T {
        let before = core.counters
        let result = body(&core)
        metrics.add(from: before, to: core.counters)
        return result
    }

    private func recordThrowing<T>(_ body: (inout SelectiveForwarder) throws -> T) throws -> T {
        let before = core.counters
        defer { metrics.add(from: before, to: core.counters) }
        return try body(&core)
    }
}

/// A participant's transport event and when its packet came off the socket (a state change:
/// when its reader took it off the transport's queue).
struct StampedTransportEvent: Sendable {
    let event: TransportEvent
    /// An RTP event's packet, parsed where it was stamped (nil for the rest, or when it did not parse).
    let packet: RTPPacket?
    let arrival: ContinuousClock.Instant

    /// Packets may be dropped when the queue is full; the transport's state changes never are.
    var isData: Bool {
        switch event {
        case .rtp, .rtcp: true
        case .connected, .failed, .closedByPeer: false
        }
    }
}
