import Foundation
import Testing

/// ffprobe's JSON for a file's first stream and format.
public func probe(_ path: String, countFrames: Bool = false) async throws -> [String: Any] {
    let result = try await Subprocess.run("ffprobe", ["-v", "error"] + (countFrames ? ["-count_frames"] : []) + [
        "-show_entries", "stream=codec_name,width,height,nb_read_frames,sample_rate,channels:format=duration,format_name", "-of", "json", path,
    ])
    #expect(result.status == 0, "ffprobe failed on \(path): \(result.output)")
    let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] ?? [:]
    var flat = (json["streams"] as? [[String: Any]])?.first ?? [:]
    for (key, value) in json["format"] as? [String: Any] ?? [:] { flat[key] = value }
    return flat
}
