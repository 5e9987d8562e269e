import Foundation
import RTP
import Codecs

/// The recording of what a session receives: the VP8 frames as they arrived (`video.ivf`), the
/// audio as the device played it from the first sound on, concealment included (`audio.wav`),
/// and when asked the Opus packets that arrived (`audio.opus`, RFC 7845). `meshnode call --record`
/// and `meshnode media-loop --out` write these.
final class MediaRecorder: MediaSink {
    private let directory: String
    private let prefix: String
    private let framesPerSecond: Int
    private var video: IVFFileWriter?
    private var pictureSizeKnown = false
    private let audio: WAVFileWriter?
    private let opus: OggOpusFileWriter?
    /// Audio frames written, counted from the first sound.
    private(set) var audioFramesWritten = 0
    private(set) var files: [String] = []
    /// The first file operation that failed; the recording goes on with the files that work.
    private(set) var error: (any Error)?

    /// Creates `directory` and the audio files; the video file waits for the video stream.
    ///
    /// - Parameters:
    ///   - prefix: Put before every file name (a call's peer and id).
    ///   - audio: Whether the session receives audio, so that `audio.wav` is written.
    ///   - opus: Whether to keep the Opus packets in `audio.opus` as well.
    ///   - framesPerSecond: The IVF time base.
    /// - Throws: ``MediaError`` `.io` when the directory cannot be created, ``CodecError`` when a file cannot.
    init(directory: String, prefix: String = "", audio: Bool, opus: Bool = false, framesPerSecond: Int = 30) throws {
        self.directory = directory
        self.prefix = prefix
        self.framesPerSecond = framesPerSecond
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw MediaError(.io, "cannot create \(directory): \(error)")
        }
        var files: [String] = []
        if audio {
            let path = (directory as NSString).appendingPathComponent(prefix + "audio.wav")
            self.audio = try WAVFileWriter(path: path)
            files.append(path)
        } else {
            self.audio = nil
        }
        if audio, opus {
            let path = (directory as NSString).appendingPathComponent(prefix + "audio.opus")
            self.opus = try OggOpusFileWriter(path: path)
            files.append(path)
        } else {
            self.opus = nil
        }
        self.files = files
    }

    func videoRecording() -> IVFFileWriter? {
        let path = (directory as NSString).appendingPathComponent(prefix + "video.ivf")
        // The picture size is unknown until the first decode; the header is corrected then.
        do {
            video = try IVFFileWriter(path: path, width: 640, height: 480, framesPerSecond: framesPerSecond)
        } catch {
            self.error = self.error ?? error
            return nil
        }
        files.append(path)
        return video
    }

    func decoded(_ picture: VideoReceiveStream.Picture) {
        guard !pictureSizeKnown else { return }
        video?.setFrameSize(width: picture.frame.width, height: picture.frame.height)
        pictureSizeKnown = true
    }

    func played(_ frame: AudioPlayoutBuffer.Frame) {
        guard let audio, frame.source != .silence || audioFramesWritten > 0 else { return }
        // From the first sound on, the recording runs with the device clock.
        record { () throws in
            try audio.write(frame.pcm)
            if let packet = frame.packet { try opus?.write(packet: packet) }
        }
        audioFramesWritten += 1
    }

    func close() {
        record { () throws in try video?.close() }
        record { () throws in try audio?.close() }
        record { () throws in try opus?.close() }
    }

    private func record(_ operation: () throws -> Void) {
        do {
            try operation()
        } catch {
            self.error = self.error ?? error
        }
    }
}
