import ArgumentParser
import Foundation
import Media
import MeshNode

/// The options of every command that sends or receives media.
struct MediaOptions: ParsableArguments {
    @Option(name: .customLong("source"), help: ArgumentHelp(
        "What to send (repeatable): pattern[:WxH[@FPS]] (test pattern, default 640x360@30), tone[:HZ] (default 440), FILE.y4m, FILE.wav, x11[:DISPLAY] (the screen), no-video, no-audio.",
        valueName: "SOURCE"))
    var sources: [String] = []
    @Option(help: "Record what arrives into DIR: one video (IVF) and one audio (WAV) file per call.")
    var record: String?
    @Option(name: .customLong("ice-address"), help: "Gather host candidates only on this local IP (repeatable; default every interface).")
    var iceAddresses: [String] = []
    @Flag(help: "Send through a TURN relay only (hides this host's addresses).")
    var relayOnly = false
    @Option(help: "VP8 start bitrate in kb/s.")
    var videoBitrate = 800

    func validate() throws {
        _ = try callOptions()
    }

    /// The call options these flags ask for.
    func callOptions() throws -> CallOptions {
        var options = CallOptions(recordDirectory: record, localAddresses: iceAddresses, relayOnly: relayOnly, videoBitrateKbps: videoBitrate)
        for source in sources {
            let (name, argument) = Self.split(source)
            switch name {
            case "pattern":
                var width = 640, height = 360, fps = 30
                if let argument {
                    let parts = argument.split(separator: "@")
                    let size = parts[0].split(separator: "x").compactMap { Int($0) }
                    guard size.count == 2, size.allSatisfy({ $0 >= 128 && $0 <= 4096 && $0 % 2 == 0 }) else {
                        throw ValidationError("--source pattern:WxH[@FPS] takes even sizes 128-4096, not '\(argument)'")
                    }
                    (width, height) = (size[0], size[1])
                    if parts.count > 1 {
                        guard let rate = Int(parts[1]), (1...60).contains(rate) else { throw ValidationError("frame rate must be 1-60, not '\(parts[1])'") }
                        fps = rate
                    }
                }
                options.videoSource = .testPattern(width: width, height: height, framesPerSecond: fps)
            case "tone":
                let frequency = argument.flatMap(Double.init) ?? 440
                guard (20...20_000).contains(frequency) else { throw ValidationError("--source tone:HZ takes 20-20000 Hz") }
                options.audioSource = .tone(frequency: frequency)
            case "x11":
                options.videoSource = .screen(display: argument, framesPerSecond: 15)
                options.desktopSource = .screen(display: argument, framesPerSecond: 15)
            case "no-video":
                options.videoSource = nil
            case "no-audio":
                options.audioSource = nil
            default:
                guard FileManager.default.isReadableFile(atPath: source) else {
                    throw ValidationError("--source '\(source)' is neither a known source nor a readable file")
                }
                if source.lowercased().hasSuffix(".y4m") {
                    options.videoSource = .y4m(path: source, framesPerSecond: 30)
                } else if source.lowercased().hasSuffix(".wav") {
                    options.audioSource = .wav(path: source)
                } else {
                    throw ValidationError("--source files are .y4m (video) or .wav (audio), not '\(source)'")
                }
            }
        }
        return options
    }

    private static func split(_ source: String) -> (String, String?) {
        guard let colon = source.firstIndex(of: ":") else { return (source, nil) }
        let name = String(source[..<colon])
        guard ["pattern", "tone", "x11"].contains(name) else { return (source, nil) }
        return (name, String(source[source.index(after: colon)...]))
    }
}
