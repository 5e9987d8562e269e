// The Swift side of the media benchmark (bench/media/run): times meshnode's own codec and RTP
// code on inputs the runner prepares, and prints one JSON object per measurement on stdout.
// The runner times ffmpeg (libvpx, libopus) on the same inputs and prints the comparison.
//
//   media-bench opus --wav IN.wav --bitrate BPS --ogg OUT.opus
//   media-bench vp8 --y4m IN.y4m --bitrate KBPS --ivf OUT.ivf
//   media-bench rtp --ivf IN.ivf [--seconds S]
//
// Time is the CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID) around the calls under
// test only: reading inputs and writing outputs are outside it.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Media
import NIOCore
import Codecs
import RTP

/// CPU seconds used so far by this thread.
func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Runs `body`, returning its result and the thread CPU seconds and wall seconds it took.
func measure<T>(_ body: () throws -> T) rethrows -> (T, cpu: Double, wall: Double) {
    let wallStart = ContinuousClock.now
    let cpuStart = threadCPUSeconds()
    let result = try body()
    let cpu = threadCPUSeconds() - cpuStart
    let wall = ContinuousClock.now - wallStart
    return (result, cpu, Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18)
}

func emit(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
}

/// `--name value` pairs after the mode.
func options(_ arguments: ArraySlice<String>) throws -> [String: String] {
    var result: [String: String] = [:]
    var rest = arguments
    while let name = rest.popFirst() {
        guard name.hasPrefix("--"), let value = rest.popFirst() else {
            throw UsageError(description: "expected --name value, got \(name)")
        }
        result[String(name.dropFirst(2))] = value
    }
    return result
}

func require(_ options: [String: String], _ name: String) throws -> String {
    guard let value = options[name] else { throw UsageError(description: "missing --\(name)") }
    return value
}

/// Opus: encode every 20 ms frame of a WAV file, then decode the packets.
func benchOpus(_ options: [String: String]) throws {
    let reader = try WAVFileReader(path: try require(options, "wav"))
    let channels = Int(reader.header.channels)
    let bitrate = Int(try require(options, "bitrate"))!
    var frames: [[Int16]] = []
    while let frame = try reader.read(samplesPerChannel: OpusAudioEncoder.frameSize), frame.count == OpusAudioEncoder.frameSize * channels {
        frames.append(frame)
    }
    let encoder = try OpusAudioEncoder(.init(channels: channels, bitrate: bitrate))
    let (packets, encodeCPU, encodeWall) = try measure { try frames.map { try encoder.encode($0) } }
    let decoder = try OpusAudioDecoder(channels: channels)
    let (samples, decodeCPU, decodeWall) = try measure { try packets.reduce(0) { $0 + (try decoder.decode($1)).count } }
    precondition(samples == frames.count * OpusAudioEncoder.frameSize * channels, "decoded sample count differs")
    if let path = options["ogg"] {
        let writer = try OggOpusFileWriter(path: path, channels: channels)
        for packet in packets { try writer.write(packet: packet) }
        try writer.close()
    }
    let audioSeconds = Double(frames.count) * 0.02
    let bytes = packets.reduce(0) { $0 + $1.readableBytes }
    emit(["case": "opus", "channels": channels, "bitrate": bitrate, "frames": frames.count, "audioSeconds": audioSeconds,
          "encodeCPU": encodeCPU, "encodeWall": encodeWall, "decodeCPU": decodeCPU, "decodeWall": decodeWall,
          "kbps": Double(bytes * 8) / audioSeconds / 1000])
}

/// VP8: encode every picture of a Y4M file with meshnode's realtime settings (one thread), then
/// decode the stream.
func benchVP8(_ options: [String: String]) throws {
    let reader = try Y4MFileReader(path: try require(options, "y4m"))
    var pictures: [VideoFrame] = []
    while let picture = try reader.nextFrame() { pictures.append(picture) }
    let fps = max(1, reader.frameRate.numerator / max(1, reader.frameRate.denominator))
    let bitrate = Int(try require(options, "bitrate"))!
    let encoder = try VP8Encoder(.init(width: reader.width, height: reader.height, bitrateKbps: bitrate, framesPerSecond: fps))
    let step = UInt32(VP8Encoder.clockRate / fps)
    let (encoded, encodeCPU, encodeWall) = try measure {
        try pictures.indices.compactMap { try encoder.encode(pictures[$0], timestamp: UInt32($0) * step) }
    }
    let decoder = try VP8Decoder(threads: 1)
    let (decodedCount, decodeCPU, decodeWall) = try measure { try encoded.reduce(0) { $0 + (try decoder.decode($1.data) == nil ? 0 : 1) } }
    if let path = options["ivf"] {
        let writer = try IVFFileWriter(path: path, width: reader.width, height: reader.height, framesPerSecond: fps)
        for frame in encoded { try writer.write(frame: frame.data, timestamp: frame.timestamp) }
        try writer.close()
    }
    let bytes = encoded.reduce(0) { $0 + $1.data.readableBytes }
    emit(["case": "vp8", "width": reader.width, "height": reader.height, "bitrate": bitrate, "frames": pictures.count,
          "encodedFrames": encoded.count, "decodedFrames": decodedCount,
          "encodeCPU": encodeCPU, "encodeWall": encodeWall, "decodeCPU": decodeCPU, "decodeWall": decodeWall,
          "kbps": Double(bytes * 8) / (Double(pictures.count) / Double(fps)) / 1000])
}

/// RTP: packetize and serialize every frame of an IVF file (VP8Packetizer, RTPPacket.write), then
/// parse the datagrams and reassemble the frames (RTPPacket(parsing:), VP8FrameAssembler), over
/// and over for about `seconds` each.
func benchRTP(_ options: [String: String]) throws {
    let reader = try IVFFileReader(path: try require(options, "ivf"))
    var frames: [ByteBuffer] = []
    while let frame = try reader.nextFrame() { frames.append(frame.data) }
    let seconds = Double(options["seconds"] ?? "1") ?? 1
    let frameBytes = frames.reduce(0) { $0 + $1.readableBytes }
    var packetizer = try VP8Packetizer(payloadType: 96, ssrc: 0x1234_5678)
    var timestamp: UInt32 = 0

    var datagrams: [ByteBuffer] = []
    var packetizeRounds = 0
    let (_, packetizeCPU, _) = try measure {
        let start = threadCPUSeconds()
        repeat {
            datagrams.removeAll(keepingCapacity: true)
            for frame in frames {
                timestamp &+= 3_000
                for packet in packetizer.packetize(frame: frame, timestamp: timestamp) {
                    var datagram = ByteBuffer()
                    datagram.reserveCapacity(packet.payload.readableBytes + RTPPacket.fixedHeaderSize)
                    try packet.write(into: &datagram)
                    datagrams.append(datagram)
                }
            }
            packetizeRounds += 1
        } while threadCPUSeconds() - start < seconds
    }

    var assembler = VP8FrameAssembler()
    var assembledBytes = 0
    var depacketizeRounds = 0
    let (_, depacketizeCPU, _) = try measure {
        let start = threadCPUSeconds()
        repeat {
            // Fresh sequence numbers each round, as if the stream went on.
            for datagram in datagrams {
                var packet = try RTPPacket(parsing: datagram)
                packet.sequenceNumber &+= UInt16(truncatingIfNeeded: depacketizeRounds &* datagrams.count)
                for frame in try assembler.insert(packet) { assembledBytes += frame.data.readableBytes }
            }
            depacketizeRounds += 1
        } while threadCPUSeconds() - start < seconds
    }
    precondition(assembledBytes == frameBytes * depacketizeRounds, "reassembled bytes differ from the frames sent")
    emit(["case": "rtp", "frames": frames.count, "packets": datagrams.count, "frameBytes": frameBytes,
          "packetizeRounds": packetizeRounds, "packetizeCPU": packetizeCPU,
          "depacketizeRounds": depacketizeRounds, "depacketizeCPU": depacketizeCPU])
}

let arguments = CommandLine.arguments
do {
    guard arguments.count >= 2 else { throw UsageError(description: "usage: media-bench opus|vp8|rtp --name value ...") }
    let parsed = try options(arguments.dropFirst(2))
    switch arguments[1] {
    case "opus": try benchOpus(parsed)
    case "vp8": try benchVP8(parsed)
    case "rtp": try benchRTP(parsed)
    default: throw UsageError(description: "unknown mode \(arguments[1]); use opus, vp8 or rtp")
    }
} catch {
    FileHandle.standardError.write(Data("media-bench: \(error)\n".utf8))
    exit(1)
}
