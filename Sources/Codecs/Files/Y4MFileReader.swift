import NIOCore

/// Reads raw pictures from a YUV4MPEG2 (Y4M) file, the uncompressed format ffmpeg and libvpx's
/// tools exchange: a text header line ("YUV4MPEG2 W.. H.. F..:.. C420…"), then for each picture a
/// "FRAME" line and its I420 planes.
public final class Y4MFileReader {
    /// Width and height in pixels.
    public let width: Int
    public let height: Int
    /// The frame rate as a fraction (the `F` parameter); 30:1 when the header has none.
    public let frameRate: (numerator: Int, denominator: Int)
    private let file: MediaFileReader

    /// The longest header or FRAME line accepted.
    static let maxLineLength = 4_096

    /// Opens a file and reads its header.
    ///
    /// - Throws: ``CodecError`` `.io` when the file cannot be opened, `.malformed` when it is not Y4M
    ///   or uses a chroma format other than 4:2:0 (`C420`, `C420jpeg`, `C420paldv`, `C420mpeg2`).
    public init(path: String) throws(CodecError) {
        file = try MediaFileReader(path: path)
        guard let line = try Self.readLine(file) else {
            throw CodecError(.truncated, "Y4M file \(path) has no header line")
        }
        let fields = line.split(separator: " ")
        guard fields.first == "YUV4MPEG2" else {
            throw CodecError(.malformed, "not a Y4M file: header starts with \(String(line.prefix(16)).debugDescription)")
        }
        var width = 0, height = 0
        var rate = (numerator: 30, denominator: 1)
        for field in fields.dropFirst() {
            let value = field.dropFirst()
            switch field.first {
            case "W": width = Int(value) ?? 0
            case "H": height = Int(value) ?? 0
            case "F":
                let parts = value.split(separator: ":").compactMap { Int($0) }
                if parts.count == 2, parts[0] > 0, parts[1] > 0 { rate = (parts[0], parts[1]) }
            case "C":
                guard value.hasPrefix("420") else {
                    throw CodecError(.malformed, "Y4M chroma format C\(value) is not supported; convert to 4:2:0 (C420)")
                }
            default: break
            }
        }
        guard (1...16384).contains(width), (1...16384).contains(height) else {
            throw CodecError(.malformed, "Y4M header has frame size \(width)×\(height)")
        }
        self.width = width
        self.height = height
        self.frameRate = rate
    }

    /// The next picture, or `nil` at the end of the file.
    ///
    /// - Throws: ``CodecError`` `.malformed` for a missing FRAME marker, `.truncated` when the file ends inside a picture.
    public func nextFrame() throws(CodecError) -> VideoFrame? {
        guard let line = try Self.readLine(file) else { return nil }
        guard line.hasPrefix("FRAME") else {
            throw CodecError(.malformed, "Y4M frame does not start with FRAME: \(String(line.prefix(16)).debugDescription)")
        }
        let lumaSize = width * height
        let chromaSize = ((width + 1) / 2) * ((height + 1) / 2)
        guard try file.ensure(lumaSize + 2 * chromaSize),
              let y = file.buffer.readBytes(length: lumaSize),
              let u = file.buffer.readBytes(length: chromaSize),
              let v = file.buffer.readBytes(length: chromaSize)
        else {
            throw CodecError(.truncated, "Y4M file ends inside a \(width)×\(height) picture")
        }
        return try VideoFrame(width: width, height: height, y: y, u: u, v: v)
    }

    private static func readLine(_ file: MediaFileReader) throws(CodecError) -> String? {
        var length = 64
        while true {
            let complete = try file.ensure(length)
            let view = file.buffer.readableBytesView
            if let newline = view.firstIndex(of: UInt8(ascii: "\n")) {
                let count = newline - view.startIndex
                let line = file.buffer.readString(length: count)
                file.buffer.moveReaderIndex(forwardBy: 1)
                return line
            }
            guard complete else {
                guard file.buffer.readableBytes == 0 else { throw CodecError(.truncated, "Y4M file ends inside a header line") }
                return nil
            }
            guard length < maxLineLength else { throw CodecError(.malformed, "Y4M header line longer than \(maxLineLength) bytes") }
            length *= 2
        }
    }
}
