import Foundation
import Testing

/// Runs a tool and returns its standard output; `nil` when the tool is not installed.
public func runTool(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String)? {
    guard let path = ["/usr/bin/\(tool)", "/usr/local/bin/\(tool)"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
        return nil
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// ffprobe's JSON for a file's first stream and format.
public func probe(_ path: String, countFrames: Bool = false) throws -> [String: Any] {
    guard let result = try runTool("ffprobe", ["-v", "error"] + (countFrames ? ["-count_frames"] : []) + [
        "-show_entries", "stream=codec_name,width,height,nb_read_frames,sample_rate,channels:format=duration,format_name", "-of", "json", path,
    ]) else {
        Issue.record("ffprobe is not installed: `make deps` installs Debian's ffmpeg")
        return [:]
    }
    #expect(result.status == 0, "ffprobe failed on \(path)")
    let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] ?? [:]
    var flat = (json["streams"] as? [[String: Any]])?.first ?? [:]
    for (key, value) in json["format"] as? [String: Any] ?? [:] { flat[key] = value }
    return flat
}

public func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "meshnode-media-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
