import RTP
import Codecs
/// Where a media session hands what it receives, besides its statistics: the compressed VP8
/// frames as they complete, every decoded picture, and every 20 ms frame the audio device plays.
/// A call records them (``MediaRecorder``); the media loop also measures the pictures against the
/// ones it sent. Called on the session's thread only.
protocol MediaSink: AnyObject {
    /// The file the received VP8 frames are written into before decoding, or `nil`; asked once,
    /// when the received video stream starts.
    func videoRecording() -> IVFFileWriter?
    /// A picture the decoder produced.
    func decoded(_ picture: VideoReceiveStream.Picture)
    /// The frame the audio device plays now: decoded, recovered by FEC, concealed or silence.
    func played(_ frame: AudioPlayoutBuffer.Frame)
    /// The files written so far.
    var files: [String] { get }
    /// Closes the files; nothing arrives afterwards.
    func close()
}
