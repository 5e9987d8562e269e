import Foundation
import ICE
import Media

/// The summary of a call that `meshnode call --json` prints (docs/calls.md): whether media
/// flowed both ways, the path ICE chose, setup times and per-stream counters.
public struct CallReport: Codable, Sendable {
    /// The selected candidate pair.
    public struct Path: Codable, Sendable {
        /// `host`, `srflx`, `prflx` or `relay` on each side.
        public var local: String
        public var remote: String
        /// `udp` or `tcp` (ICE-TCP); TURN over TCP/TLS shows as a relay candidate over udp.
        public var transport: String
        /// The relayed address (IP:port on the TURN server) when either side sends through a relay.
        public var relay: String?
        public var localAddress: String
        public var remoteAddress: String
    }

    public var ok: Bool
    public var call: String
    public var to: String
    public var kind: String
    /// From the call request (caller) or the incoming request (callee) to the first decoded video
    /// frame (the first media packet for audio-only calls), ms.
    public var setupMs: Double?
    /// From the offer to ICE connected, ms.
    public var iceMs: Double?
    /// The DTLS handshake, ms.
    public var dtlsMs: Double?
    public var path: Path?
    public var streams: [MediaSessionStatistics.Stream]
    public var rttMs: Double?
    public var iceRestarts: Int
    /// How long the last ICE restart took to bring media back, ms.
    public var restartMs: Double?
    /// How long media flowed, ms.
    public var durationMs: Double?
    public var files: [String]
    public var error: String?
    /// A call to a room call's forwarder: what was decoded of each other participant, by sender
    /// (`streams` then holds what this side sent).
    public var forwarded: [ForwardedReception]? = nil
    /// What each VP8 simulcast layer this side sent went out with (a call to a forwarder, lowest
    /// layer first); absent when the video went as one stream.
    public var simulcastLayers: [MediaSessionStatistics.SimulcastLayerStatistics]? = nil
    /// Received packets the call's bounded queues dropped because their readers fell behind
    /// (a flood, or a process starved of CPU): the sender saw them as lost.
    public var receiveQueueDrops: ReceiveQueueDrops? = nil
    /// How the received packets reached the media engines (docs/calls.md "How a received packet
    /// travels").
    public var receiveHandOff: ReceiveHandOff? = nil

    /// Decrypted packets handed straight from the thread that read their datagrams to the
    /// media engines, and those that waited in the DTLS-SRTP transport's queue for a reader task.
    public struct ReceiveHandOff: Codable, Sendable, Equatable {
        public var direct: Int
        public var queued: Int
    }
}

extension CallReport {
    /// The report of a call that never started.
    public static func failure(to: String, kind: String, error: String) -> CallReport {
        CallReport(ok: false, call: "", to: to, kind: kind, setupMs: nil, iceMs: nil, dtlsMs: nil, path: nil, streams: [],
                   rttMs: nil, iceRestarts: 0, restartMs: nil, durationMs: nil, files: [], error: error)
    }
}

extension Call {
    /// The report now; `ok` says whether media flowed both ways and the call did not fail.
    public func report() -> CallReport {
        let stats = statistics
        func ms(_ duration: Duration?) -> Double? { duration.map { ($0.inMilliseconds * 10).rounded() / 10 } }
        var setup: Duration?
        if let mediaStarted {
            let firstFrame = stats?.firstVideoFrameMilliseconds.map { Duration.milliseconds($0) } ?? .zero
            setup = (mediaStarted - created) + firstFrame
        }
        let path = selectedPair.map { pair -> CallReport.Path in
            let relayed = pair.local.kind == .relay ? pair.local : (pair.remote.kind == .relay ? pair.remote : nil)
            return CallReport.Path(
                local: pair.local.kind.rawValue, remote: pair.remote.kind.rawValue, transport: pair.local.transport.rawValue.lowercased(),
                relay: relayed.map { Self.hostPort($0.address, $0.port) },
                localAddress: Self.hostPort(pair.local.address, pair.local.port), remoteAddress: Self.hostPort(pair.remote.address, pair.remote.port))
        }
        let receptions: [ForwardedReception]? = forwarded ? forwardedStatistics.sorted { $0.key < $1.key }
            .map { sender, stats in
                let first = forwardedReceivers.started(sender).flatMap { start in stats.firstVideoFrameMilliseconds.map { start + $0 / 1000 } }
                return ForwardedReception(from: sender, streams: [stats.audio, stats.video].compactMap { $0 }, firstFrameAt: first)
            } : nil
        // Forwarded: what this side sends went out, and every other participant's video (or
        // audio) was decoded.
        let flowed = if let receptions {
            (stats?.mediaFlowedBothWays ?? false) && !receptions.isEmpty
                && receptions.allSatisfy { $0.streams.contains { $0.receivedFrames > 0 } }
        } else {
            stats?.mediaFlowedBothWays ?? false
        }
        let error: String? = if failed { endReason ?? "failed" } else if !flowed { endReason.map { "no media both ways (\($0))" } ?? "no media both ways yet" } else { nil }
        return CallReport(
            ok: flowed && !failed, call: id, to: remote, kind: kind.rawValue, setupMs: ms(setup),
            iceMs: ms(offerSent.flatMap { sent in iceConnected.map { $0 - sent } }),
            dtlsMs: ms(transport?.statistics.handshakeDuration), path: path,
            streams: [stats?.audio, stats?.video].compactMap { $0 }, rttMs: stats?.roundTripMilliseconds.map { ($0 * 10).rounded() / 10 },
            iceRestarts: machine.restarts, restartMs: ms(machine.lastRestartDuration), durationMs: stats.map { ($0.elapsedMilliseconds).rounded() },
            files: stats?.files ?? [], error: error, forwarded: receptions,
            simulcastLayers: stats.flatMap { $0.simulcastLayers.isEmpty ? nil : $0.simulcastLayers },
            receiveQueueDrops: receiveQueueDrops,
            receiveHandOff: transport.map { transport in
                let statistics = transport.statistics
                let direct = statistics.packetsHandedOver
                return CallReport.ReceiveHandOff(direct: direct, queued: statistics.rtpReceived + statistics.rtcpReceived - direct)
            })
    }

    /// What every receive queue of the call dropped so far: the ICE agent's and its feed's (of
    /// replaced agents too), the DTLS-SRTP transport's, and the media engines' (one per sender
    /// in a forwarded call).
    var receiveQueueDrops: ReceiveQueueDrops {
        var drops = retiredQueueDrops + (ice?.queueDrops ?? ReceiveQueueDrops())
        drops.transport = transport?.statistics.receiveQueueDrops ?? 0
        drops.engine = (statistics?.inboundQueueDrops ?? 0) + forwardedStatistics.values.reduce(0) { $0 + $1.inboundQueueDrops }
        return drops
    }

    static func hostPort(_ address: String, _ port: UInt16) -> String {
        address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }
}
