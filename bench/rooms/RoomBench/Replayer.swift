import NIOCore
import RTP
import Synchronization

/// Sends the pre-encoded media (``EncodedMedia``) for every publishing participant on one clock:
/// an Opus frame every 20 ms and a video frame of every layer every 1/fps s, each participant
/// under its own SSRCs with its own random sequence numbers and timestamp offsets (RFC 3550 §5.1),
/// as a live encoder would. One task drives all participants, so the load generator's cost is a
/// header rewrite and an SRTP protect per packet.
final class Replayer: Sendable {
    private struct Stream: Sendable {
        var ssrc: UInt32
        var sequenceNumber = UInt16.random(in: 0...UInt16.max)
        var timestampOffset = UInt32.random(in: 0...UInt32.max)
    }

    private struct Publisher: Sendable {
        var connection: BenchConnection
        var audio: Stream
        var video: [Stream]
    }

    static let audioPayloadType: UInt8 = 111
    static let videoPayloadType: UInt8 = 96

    /// How late a tick may be and still be sent: later ones are skipped, as a live encoder
    /// drops frames it had no time for, instead of sending a backlog as one burst.
    static let maxLateness = Duration.milliseconds(100)

    private let media: EncodedMedia
    private let publishers = Mutex<[String: Publisher]>([:])
    private let skipped = Mutex(0)

    /// Ticks (audio and video) skipped because the replay fell behind: above zero, the load
    /// generator did not keep up and the run's `delivered` says more about it than the server.
    var skippedTicks: Int { skipped.withLock { $0 } }

    init(media: EncodedMedia) { self.media = media }

    /// Starts sending for `connection` with `sending`'s SSRCs (one video SSRC per layer; a
    /// server that negotiated fewer layers gets only those we name).
    func add(_ connection: BenchConnection, sending: Sending) {
        let publisher = Publisher(connection: connection, audio: Stream(ssrc: sending.audioSSRC),
                                  video: sending.videoSSRCs.map { Stream(ssrc: $0) })
        publishers.withLock { $0[connection.id] = publisher }
    }

    func remove(_ id: String) { publishers.withLock { _ = $0.removeValue(forKey: id) } }

    /// Runs until cancelled.
    func run() async {
        let clock = ContinuousClock()
        let start = clock.now
        let audioPeriod = Duration.milliseconds(20)
        let videoPeriod = Duration.seconds(1) / media.framesPerSecond
        var audioTick = 0
        var videoTick = 0
        while !Task.isCancelled {
            let nextAudio = start + audioPeriod * audioTick
            let nextVideo = start + videoPeriod * videoTick
            let next = min(nextAudio, nextVideo)
            if next > clock.now { try? await Task.sleep(until: next, clock: clock) }
            let late = clock.now - next
            if late > Self.maxLateness {
                // Resume on the current slot of each clock; the sequence numbers go on (the RTP
                // timestamps jump, as after frames an encoder dropped).
                let audioNow = Int((clock.now - start) / audioPeriod), videoNow = Int((clock.now - start) / videoPeriod)
                skipped.withLock { $0 += max(0, audioNow - audioTick) + max(0, videoNow - videoTick) }
                audioTick = max(audioTick, audioNow)
                videoTick = max(videoTick, videoNow)
                continue
            }
            if nextAudio <= nextVideo {
                sendAudio(tick: audioTick)
                audioTick += 1
            } else {
                sendVideo(tick: videoTick)
                videoTick += 1
            }
        }
    }

    private func sendAudio(tick: Int) {
        let payload = media.audio[tick % media.audio.count]
        let timestamp = UInt32(truncatingIfNeeded: tick * 960)
        let packets = publishers.withLock { publishers -> [(BenchConnection, ByteBuffer)] in
            var result: [(BenchConnection, ByteBuffer)] = []
            for id in Array(publishers.keys) {
                guard var publisher = publishers[id] else { continue }
                let packet = RTPPacket(marker: tick == 0, payloadType: Self.audioPayloadType, sequenceNumber: publisher.audio.sequenceNumber,
                                       timestamp: publisher.audio.timestampOffset &+ timestamp, ssrc: publisher.audio.ssrc, payload: payload)
                publisher.audio.sequenceNumber &+= 1
                publishers[id] = publisher
                if let bytes = try? packet.serialized() { result.append((publisher.connection, bytes)) }
            }
            return result
        }
        for (connection, bytes) in packets { connection.send(bytes) }
    }

    private func sendVideo(tick: Int) {
        let timestamp = UInt32(truncatingIfNeeded: tick * (90_000 / media.framesPerSecond))
        let packets = publishers.withLock { publishers -> [(BenchConnection, ByteBuffer)] in
            var result: [(BenchConnection, ByteBuffer)] = []
            for id in Array(publishers.keys) {
                guard var publisher = publishers[id] else { continue }
                // A publisher with fewer SSRCs than layers sends the top ones (our top layer is last).
                let offset = media.layers.count - publisher.video.count
                for index in publisher.video.indices {
                    let frame = media.layers[offset + index].frames[tick % media.layers[offset + index].frames.count]
                    for (payload, marker) in zip(frame.payloads, frame.markers) {
                        let stream = publisher.video[index]
                        let packet = RTPPacket(marker: marker, payloadType: Self.videoPayloadType, sequenceNumber: stream.sequenceNumber,
                                               timestamp: stream.timestampOffset &+ timestamp, ssrc: stream.ssrc, payload: payload)
                        publisher.video[index].sequenceNumber &+= 1
                        if let bytes = try? packet.serialized() { result.append((publisher.connection, bytes)) }
                    }
                }
                publishers[id] = publisher
            }
            return result
        }
        for (connection, bytes) in packets { connection.send(bytes) }
    }
}
