import Foundation
import NIOCore

/// Buffered sequential reading of a media file, shared by the Y4M, IVF and WAV readers: it keeps
/// a ``ByteBuffer`` of what has been read and not yet parsed, and fills it on demand.
final class MediaFileReader {
    private let handle: FileHandle
    private let path: String
    /// Bytes read from the file and not yet consumed.
    var buffer = ByteBuffer()
    private var atEnd = false

    init(path: String) throws(CodecError) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CodecError(.io, "cannot open \(path) for reading")
        }
        self.handle = handle
        self.path = path
    }

    deinit {
        try? handle.close()
    }

    /// Makes at least `count` bytes readable; returns false when the file ends first.
    func ensure(_ count: Int) throws(CodecError) -> Bool {
        while buffer.readableBytes < count && !atEnd {
            let chunk: Data?
            do {
                chunk = try handle.read(upToCount: max(65_536, count - buffer.readableBytes))
            } catch {
                throw CodecError(.io, "reading \(path) failed: \(error)")
            }
            guard let chunk, !chunk.isEmpty else {
                atEnd = true
                break
            }
            buffer.discardReadBytes()
            buffer.writeBytes(chunk)
        }
        return buffer.readableBytes >= count
    }
}

/// Sequential writing of a media file with the ability to patch its header on close.
final class MediaFileWriter {
    private let handle: FileHandle
    let path: String
    private(set) var isClosed = false

    init(path: String) throws(CodecError) {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw CodecError(.io, "cannot create \(path)")
        }
        self.handle = handle
        self.path = path
    }

    deinit {
        try? handle.close()
    }

    func write(_ buffer: ByteBuffer) throws(CodecError) {
        guard !isClosed else { throw CodecError(.io, "\(path) is already closed") }
        do {
            try handle.write(contentsOf: Data(buffer.readableBytesView))
        } catch {
            throw CodecError(.io, "writing \(path) failed: \(error)")
        }
    }

    /// Overwrites bytes at `offset` and returns to the end of the file.
    func patch(_ buffer: ByteBuffer, at offset: UInt64) throws(CodecError) {
        do {
            try handle.seek(toOffset: offset)
            try handle.write(contentsOf: Data(buffer.readableBytesView))
            try handle.seekToEnd()
        } catch {
            throw CodecError(.io, "updating the header of \(path) failed: \(error)")
        }
    }

    func close() throws(CodecError) {
        guard !isClosed else { return }
        isClosed = true
        do {
            try handle.close()
        } catch {
            throw CodecError(.io, "closing \(path) failed: \(error)")
        }
    }
}
