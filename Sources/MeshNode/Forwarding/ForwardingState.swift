import DTLSSRTP
import Logging
import Media
import MeshCore
import RTP

/// What every forwarded packet touches in a ``ForwardedCall``: the core, the participants'
/// transports and their uplinks' reports. It lives behind the call's one lock, so a packet is
/// forwarded on the thread that decrypted it, in turn with the others and with the 20 ms tick.
///
/// The copies are protected and sent inside the lock too: the transport-wide number each gets
/// is stamped with the send time then, and the receiver's delay-based estimate reads any wait
/// between the two as a queue on its path (sending them from the participants' tasks instead
/// made a non-squeezed receiver's estimate fall in `testnet/squeeze`, session 11).
struct ForwardingState {
    /// The call's id, for the log.
    let id: String
    var core: SelectiveForwarder
    var transports: [String: DTLSSRTPTransport] = [:]
    /// The forwarder's own reports on each participant's uplink.
    var uplinks: [String: UplinkFeedback] = [:]
    let metrics: ForwarderMetrics
    let logger: Logger
    private var limiter = LogLimiter()
    /// This call's share of the paused-video and withheld-audio gauges.
    private var squeezed: (pausedVideo: Int, withheldAudio: Int) = (0, 0)

    init(id: String, core: SelectiveForwarder, metrics: ForwarderMetrics, logger: Logger) {
        self.id = id
        self.core = core
        self.metrics = metrics
        self.logger = logger
    }

    /// A packet of `participant` that came off the socket `arrived` after the call's epoch.
    /// The core keeps the call's clock (`now`, forward across participants); the uplink's
    /// feedback and reports, each of one participant, take the packet's own arrival.
    mutating func receive(_ event: TransportEvent, packet parsed: RTPPacket?, from participant: String, now time: Duration, arrived: Duration) {
        guard transports[participant] != nil else { return }
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
        case .connected, .failed, .closedByPeer:
            break
        }
    }

    /// The core's tick, the squeeze gauges and the uplinks' reports that are due.
    mutating func tick(now time: Duration) {
        send(record { $0.tick(now: time) })
        updateSqueezed()
        for participant in Array(uplinks.keys) {
            guard let packets = uplinks[participant]?.due(now: time), !packets.isEmpty else { continue }
            send([.rtcp(to: participant, packets)])
        }
    }

    mutating func updateSqueezed() {
        let current = core.squeezedStreams
        metrics.squeezeChanged(video: current.pausedVideo - squeezed.pausedVideo, audio: current.withheldAudio - squeezed.withheldAudio)
        squeezed = current
    }

    /// One line per receiver with simulcast senders: its estimate and the layer of each sender
    /// (`h→f` while a switch waits for its key frame), so that an operator sees why a receiver
    /// gets what it gets.
    func logLayers() {
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

    /// Protects and sends what the core made, each with its receiver's keys.
    mutating func send(_ outputs: [ForwarderOutput]) {
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

    private mutating func refused(_ error: any Error, from participant: String) {
        if let left = limiter.allow("refused-\(participant)", now: .now) {
            logger.notice("forwarded call \(id): refused from \(participant): \(error.errorReason) (\(left) like it left out)")
        }
    }

    /// Runs `body` on the core and adds the counters' growth to `/metrics`.
    mutating func record<T>(_ body: (inout SelectiveForwarder) -> T) -> T {
        let before = core.counters
        let result = body(&core)
        metrics.add(from: before, to: core.counters)
        return result
    }

    private mutating func recordThrowing<T>(_ body: (inout SelectiveForwarder) throws -> T) throws -> T {
        let before = core.counters
        defer { metrics.add(from: before, to: core.counters) }
        return try body(&core)
    }
}
