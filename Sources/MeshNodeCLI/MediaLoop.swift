import ArgumentParser
import Foundation
import Media
import Codecs
import ICE

/// `meshnode media-loop`: the whole media pipeline in one process, to see the engine work.
struct MediaLoopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "media-loop",
        abstract: "Run test-pattern video and tone audio through encode → RTP → a lossy link → NACK/PLI → decode.",
        discussion: """
        Time is simulated, so the run takes as long as encoding and decoding take. The link drops \
        the given share of packets in both directions and delays some by up to 15 ms, which \
        reorders them. With --out, the received streams are written as DIR/video.ivf (VP8) and \
        DIR/audio.wav (48 kHz PCM), which ffplay and ffprobe read. With --forwarded N, a room \
        call of N participants runs through the selective forwarding core instead \
        (docs/rooms.md): each joins 0.5 s after the previous, sends once and decodes every other; \
        --duration counts from the last join. With --simulcast each participant sends three VP8 \
        layers (full, 1/2, 1/4 size; --size is the full one, at least 512 wide for the test \
        pattern to be read at 1/4) and the forwarder picks each receiver's layers from its \
        transport-cc estimate; --squeeze KBPS limits the second participant's downlink from 1 s \
        after the last join for --squeeze-seconds, and the layers each receiver got are printed \
        halfway (at the end of the squeeze) and at the end.
        """
    )

    @Option(help: "Random packet loss in percent, both directions (default 5).")
    var loss: Double = 5
    @Option(help: "Share of packets delayed enough to be reordered, in percent (default 5).")
    var reorder: Double = 5
    @Option(help: "Simulated duration in seconds (default 5).")
    var duration: Double = 5
    @Option(help: "Video size WIDTHxHEIGHT (default 320x240).")
    var size: String = "320x240"
    @Option(help: "Video bitrate in kb/s (default 600).")
    var bitrate: Int = 600
    @Option(help: "One-way link delay in milliseconds (default 20).")
    var delay: Int = 20
    @Option(help: "Bottleneck capacity of the forward path in kb/s; the sender then adapts its bitrates to it.")
    var capacity: Int?
    @Option(help: "Directory for video.ivf and audio.wav.")
    var out: String?
    @Flag(help: "Resend the original packets instead of using RTX (RFC 4588).")
    var noRTX = false
    @Option(help: "Seed of the link's random choices (default 1).")
    var seed: UInt64 = 1
    @Option(help: "Run a forwarded room call of this many participants (2–20) through the forwarding core.")
    var forwarded: Int?
    @Flag(help: "With --forwarded: participants send VP8 simulcast (three layers); the forwarder picks each receiver's layers.")
    var simulcast = false
    @Option(help: "With --simulcast: limit the second participant's downlink to this many kb/s for a while.")
    var squeeze: Int?
    @Option(help: "How long the squeeze lasts, in seconds (default 3.5).")
    var squeezeSeconds: Double = 3.5
    @Flag(help: "Print the statistics as JSON.")
    var json = false

    func validate() throws {
        guard (0...100).contains(loss), (0...100).contains(reorder) else { throw ValidationError("--loss and --reorder are percentages, 0–100") }
        guard duration > 0, duration <= 3600 else { throw ValidationError("--duration must be between 0 and 3600 seconds") }
        guard capacity.map({ $0 >= 50 }) ?? true else { throw ValidationError("--capacity is at least 50 kb/s") }
        guard forwarded.map({ (2...20).contains($0) }) ?? true else { throw ValidationError("--forwarded takes 2 to 20 participants") }
        guard !simulcast || forwarded != nil else { throw ValidationError("--simulcast needs --forwarded N") }
        guard squeeze == nil || simulcast else { throw ValidationError("--squeeze needs --simulcast") }
        guard squeeze.map({ $0 >= 50 }) ?? true, squeezeSeconds > 0, squeezeSeconds < duration else {
            throw ValidationError("--squeeze is at least 50 kb/s and --squeeze-seconds shorter than --duration")
        }
        guard parsedSize != nil else { throw ValidationError("--size must look like 640x480, even numbers, at least 128x48") }
    }

    private var parsedSize: (width: Int, height: Int)? {
        let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts[0] >= 128, parts[1] >= 48, parts[0] % 2 == 0, parts[1] % 2 == 0 else { return nil }
        return (parts[0], parts[1])
    }

    func run() throws {
        let (width, height) = parsedSize ?? (320, 240)
        if let forwarded { return try runForwarded(participants: forwarded, width: width, height: height) }
        let configuration = MediaLoop.Configuration(
            width: width, height: height, videoBitrateKbps: bitrate, duration: .milliseconds(Int64(duration * 1000)),
            lossProbability: loss / 100, reorderProbability: reorder / 100, delay: .milliseconds(delay), useRTX: !noRTX,
            outputDirectory: out, capacityBitsPerSecond: capacity.map { Double($0) * 1000 }, adaptBitrate: capacity != nil, seed: seed)
        let report: MediaLoop.Report
        do {
            report = try MediaLoop(configuration: configuration).run()
        } catch {
            throw ValidationError("\(error)")
        }
        if json { return try printJSON(report) }
        let video = report.video, audio = report.audio
        print("video  VP8 \(width)x\(height): sent \(report.framesSent) frames (\(report.keyframesSent) keyframes), decoded \(video.patternFrameNumbers.count), gaps \(video.patternGaps)")
        print("       packets \(video.packets), lost \(video.lost), recovered by NACK \(video.recoveredByNACK) (\(video.nackRequests) requests, \(report.retransmissions) resent), lost for good \(video.lostForGood), PLI \(video.pictureLossIndications)")
        print("       PSNR mean \(String(format: "%.1f", report.meanPSNR)) dB, min \(String(format: "%.1f", report.minimumPSNR)) dB; jitter \(String(format: "%.2f", video.jitterMilliseconds)) ms; latency \(String(format: "%.0f", video.meanLatencyMilliseconds)) ms; \(String(format: "%.0f", video.bitrateKbps)) kb/s; decode errors \(video.decodeErrors)")
        print("audio  Opus: packets \(audio.packets), lost \(audio.lost), FEC \(audio.recoveredByFEC), concealed \(audio.concealed), jitter \(String(format: "%.2f", audio.jitterMilliseconds)) ms, \(String(format: "%.0f", audio.bitrateKbps)) kb/s")
        if let rtt = report.measuredRoundTripMilliseconds { print("rtt    \(String(format: "%.1f", rtt)) ms measured from SR/RR") }
        if !report.targetKbpsPerSecond.isEmpty {
            print("rate   target per second (kb/s): \(report.targetKbpsPerSecond.map(String.init).joined(separator: " ")); VP8 \(report.finalVideoKbps) kb/s and Opus \(report.finalAudioBitrate / 1000) kb/s at the end; \(report.packetsDroppedByQueue) packets dropped by the bottleneck queue")
        }
        for file in report.files { print("wrote  \(file)") }
    }

    /// `--json`: the report, indented, keys sorted (stable for scripts and diffs).
    private func printJSON(_ report: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    /// `--forwarded N`: one line per receiver and sender, then what the forwarder did; fails
    /// (exit 1) when some participant decoded nothing of another.
    private func runForwarded(participants: Int, width: Int, height: Int) throws {
        var configuration = ForwardedCallLoop.Configuration(
            participants: participants, width: width, height: height, videoBitrateKbps: bitrate,
            duration: .milliseconds(Int64(duration * 1000)), lossProbability: loss / 100, delay: .milliseconds(delay), seed: seed)
        configuration.simulcast = simulcast
        if let squeeze {
            let from = configuration.joinInterval * (participants - 1) + .seconds(1)
            configuration.squeeze = .init(participant: 1, capacityBitsPerSecond: Double(squeeze) * 1000, from: from,
                                          until: from + .milliseconds(Int64(squeezeSeconds * 1000)))
        }
        let report: ForwardedCallLoop.Report
        do {
            report = try ForwardedCallLoop(configuration: configuration).run()
        } catch {
            throw ValidationError("\(error)")
        }
        if json {
            try printJSON(report)
        } else {
            for reception in report.receptions {
                let video = reception.video, audio = reception.audio
                print("\(reception.receiver) <- \(reception.sender)  video decoded \(video.patternFrameNumbers.count) frames (first \(video.patternFrameNumbers.first ?? -1), last \(video.patternFrameNumbers.last ?? -1)), lost \(video.lost), recovered \(video.recoveredByNACK); audio \(audio.packets) packets")
            }
            let counters = report.forwarder
            for (label, states) in [("during squeeze", report.layersDuringSqueeze), ("at end", report.layersAtEnd)] where !states.isEmpty {
                for (receiver, layers) in Dictionary(grouping: states, by: \.receiver).sorted(by: { $0.key < $1.key }) {
                    let list = layers.map { "\($0.sender) \($0.rid ?? "-")\($0.target != $0.layer ? "→\(ForwardedCallLoop.simulcastRIDs[$0.target])" : "") (\($0.switches) switches)" }
                    print("layers \(label)  \(receiver): estimate \(Int((layers.first?.estimate ?? 0) / 1000)) kb/s; \(list.joined(separator: ", "))")
                }
            }
            print("forwarder  in \(counters.packetsIn) packets \(counters.bytesIn) B, out \(counters.packetsOut) packets \(counters.bytesOut) B; NACKed \(counters.nackedPackets): \(counters.nacksAnsweredFromCache) from the cache, \(counters.nacksForwardedToSource) asked of the source; PLI \(counters.plisForwarded), FIR \(counters.firsForwarded) to sources; reports ended \(counters.reportsTerminated); layer switches \(counters.layerSwitches) (\(counters.layerSwitchesDown) down); refused \(counters.rejected)")
        }
        if report.receptions.contains(where: { $0.video.patternFrameNumbers.isEmpty }) { throw ExitCode.failure }
    }
}
