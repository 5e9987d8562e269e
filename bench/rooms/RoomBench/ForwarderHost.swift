import DTLSSRTP
import Foundation
import ICE
import Media
import MeshNode
import SDP
import Synchronization

/// `room-bench --forwarder`: our forwarding core as a server of its own, for the comparison with
/// Janus until `meshnode serve --forwarder` exists — `ForwardedCall` (the class `serve` will own)
/// behind one libnice ICE agent and DTLS-SRTP transport per participant, the SDP exchange done by
/// the runner instead of signaling. The media path is the one `serve` will run; what is missing is
/// the signaling (login, the room call, signed call setup), which costs nothing per packet.
///
///   {"op":"join","id":"p1","sdp":OFFER}  -> {"event":"answer","id":"p1","sdp":…}  (recvonly, DTLS client)
///   {"op":"offer","id":"p1"}             -> {"event":"offer","id":"p1","sdp":…}   (JSEPOffer.makeForwarded)
///   {"op":"bind","id":"p1","sdp":ANSWER} -> {"event":"bound","id":"p1","streams":n}
///   {"op":"counters"}                    -> {"event":"counters",…}
final class ForwarderHost: Sendable {
    private struct Entry: Sendable {
        var connection: BenchConnection
        var pendingOffer: SessionDescription?
        var pendingStreams: [ForwardedStreamDescription] = []
        var version = 1
    }

    private let call = ForwardedCall(id: "room-bench")
    private let entries = Mutex<[String: Entry]>([:])

    func handle(_ command: [String: Any]) async throws {
        let op = command["op"] as? String ?? ""
        let id = command["id"] as? String ?? ""
        switch op {
        case "join":
            let offer = try SessionDescription(parsing: command["sdp"] as? String ?? "")
            let connection = try await BenchConnection.make(id: id, role: .controlled, counting: false, loop: .pooled(by: call.id))
            try entries.withLock { entries in
                guard entries.count < ForwardingConfiguration().maxParticipants else { throw BenchError("the forwarder is full") }
                entries[id] = Entry(connection: connection)
            }
            let answer = try await connection.answer(offer: offer, sending: nil)
            let streams = try NegotiatedStream.fromAnswering(offer: offer, answer: answer)
            let sources = streams.compactMap { stream -> ForwardedSource? in
                guard let kind = ForwardedSource.Kind(rawValue: stream.kind), let ssrc = stream.remoteSSRCs.first else { return nil }
                return ForwardedSource(kind: kind, ssrc: ssrc, payloadType: stream.payloadType)
            }
            guard let transport = connection.transport else { throw BenchError("\(id): no transport after the answer") }
            try await call.add(id, transport: transport, sources: sources,
                               extensions: ForwardingExtensionIDs(transportWideCC: streams.compactMap(\.transportCCExtensionID).first))
            emit(["event": "answer", "id": id, "sdp": answer.serialized])
        case "offer":
            guard var entry = entries.withLock({ $0[id] }) else { throw BenchError("no participant '\(id)'") }
            let streams = await call.outgoingStreams(to: id)
            let credentials = try await entry.connection.agent.localCredentials()
            entry.version += 1
            let offer = try JSEPOffer.makeForwarded(
                local: .init(iceUsernameFragment: credentials.ufrag, icePassword: credentials.password,
                             fingerprint: entry.connection.certificate.fingerprint, cname: "forwarder", streamID: "forwarder",
                             kinds: [], sending: [:], sessionID: entry.connection.sessionID, sessionVersion: entry.version),
                forwarded: streams.map { .init(kind: $0.kind.rawValue, ssrc: $0.ssrc, retransmissionSSRC: $0.retransmissionSSRC, streamID: $0.from) })
            entry.pendingOffer = offer
            entry.pendingStreams = streams
            entries.withLock { $0[id] = entry }
            emit(["event": "offer", "id": id, "sdp": offer.serialized])
        case "bind":
            guard let entry = entries.withLock({ $0[id] }), let offer = entry.pendingOffer else { throw BenchError("no offer out to '\(id)'") }
            let answer = try SessionDescription(parsing: command["sdp"] as? String ?? "")
            let negotiated = try NegotiatedStream.fromOffering(offer: offer, answer: answer)
            // makeForwarded puts the participant's own audio and video first, then the streams in order.
            guard negotiated.count == entry.pendingStreams.count + 2 else {
                throw BenchError("\(id) answered \(negotiated.count) sections of \(entry.pendingStreams.count + 2)")
            }
            var bound = 0
            for (index, stream) in entry.pendingStreams.enumerated() where stream.binding == nil {
                let section = negotiated[index + 2]
                try await call.bind(id, ssrc: stream.ssrc, ForwardingBinding(
                    mid: section.mid ?? String(index + 2), payloadType: section.payloadType, retransmissionPayloadType: section.rtxPayloadType))
                bound += 1
            }
            emit(["event": "bound", "id": id, "streams": bound])
        case "counters":
            let counters = await call.counters
            // The transports' view next to the core's: what authenticated (and what SRTP dropped)
            // before the core, to tell where a packet that the core never saw was lost.
            var transports = TransportStatistics()
            for entry in entries.withLock({ Array($0.values) }) {
                guard let statistics = entry.connection.transport?.statistics else { continue }
                transports.rtpReceived += statistics.rtpReceived
                transports.authenticationFailures += statistics.authenticationFailures
                transports.replaysDropped += statistics.replaysDropped
                transports.otherDrops += statistics.otherDrops
            }
            emit(["event": "counters", "packetsIn": counters.packetsIn, "packetsOut": counters.packetsOut,
                  "bytesOut": counters.bytesOut, "rejected": counters.rejected,
                  "transportRTPReceived": transports.rtpReceived, "transportDrops":
                      transports.authenticationFailures + transports.replaysDropped + transports.otherDrops])
        default:
            throw BenchError("unknown op '\(op)' for the forwarder")
        }
    }

    func quit() async {
        await call.close()
        for entry in entries.withLock({ Array($0.values) }) { await entry.connection.close() }
    }
}
