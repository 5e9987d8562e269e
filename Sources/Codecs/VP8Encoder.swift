internal import CCodecShims
internal import CVPX
import NIOCore

/// A realtime VP8 encoder (RFC 6386) through libvpx, set up the way WebRTC senders use it: CBR,
/// no lag, error resilient, bitrate changeable while running, keyframes on request (PLI/FIR), and
/// a screen-content mode for desktop sharing.
///
/// Not thread-safe: one encoder belongs to one sending stream and is used from one task at a time.
public final class VP8Encoder {
    /// What the picture shows, which changes libvpx's tuning.
    public enum Content: Sendable {
        /// Camera or synthetic video.
        case camera
        /// A desktop: sharp text, large static areas, sudden changes (libvpx screen content mode).
        case screen
    }

    /// Encoder settings.
    public struct Configuration: Sendable {
        public var width: Int
        public var height: Int
        /// Target bitrate in kilobits per second.
        public var bitrateKbps: Int
        /// The frame rate the rate control plans for.
        public var framesPerSecond: Int
        /// What the picture shows.
        public var content: Content
        /// libvpx speed/quality trade-off, -16…16; negative values adapt to the time budget (realtime).
        public var cpuUsed: Int
        /// The longest run of frames between keyframes the encoder inserts on its own.
        public var keyframeInterval: Int
        /// Whether rate control may skip frames to hold the bitrate.
        public var allowFrameDropping: Bool
        /// Encoder threads.
        public var threads: Int

        /// Creates settings; the defaults suit a camera stream.
        public init(width: Int, height: Int, bitrateKbps: Int = 1_000, framesPerSecond: Int = 30, content: Content = .camera,
                    cpuUsed: Int = -6, keyframeInterval: Int = 3_000, allowFrameDropping: Bool = false, threads: Int = 1) {
            self.width = width
            self.height = height
            self.bitrateKbps = bitrateKbps
            self.framesPerSecond = framesPerSecond
            self.content = content
            self.cpuUsed = cpuUsed
            self.keyframeInterval = keyframeInterval
            self.allowFrameDropping = allowFrameDropping
            self.threads = threads
        }
    }

    /// One compressed frame.
    public struct EncodedFrame: Hashable, Sendable {
        /// The VP8 bitstream of the frame.
        public var data: ByteBuffer
        /// Whether it is a keyframe, decodable without earlier frames.
        public var isKeyframe: Bool
        /// The RTP timestamp (90 kHz) of the picture.
        public var timestamp: UInt32
    }

    /// The highest target bitrate accepted, in kb/s (100 Mb/s, far above any WebRTC stream).
    public static let maximumBitrateKbps = 100_000

    /// The RTP clock rate for VP8 (RFC 7741 §6.1).
    public static let clockRate = 90_000

    /// The settings in force.
    public private(set) var configuration: Configuration
    private let context: UnsafeMutablePointer<vpx_codec_ctx_t>
    private let encoderConfig: UnsafeMutablePointer<vpx_codec_enc_cfg_t>
    private var keyframeRequested = false

    /// Creates an encoder.
    ///
    /// - Throws: ``CodecError`` `.invalidArgument` for odd settings, `.codecFailure` when libvpx refuses them.
    public init(_ configuration: Configuration) throws(CodecError) {
        guard (16...16384).contains(configuration.width), (16...16384).contains(configuration.height) else {
            throw CodecError(.invalidArgument, "VP8 frame size \(configuration.width)×\(configuration.height) is outside 16–16384 pixels per side")
        }
        guard (1...Self.maximumBitrateKbps).contains(configuration.bitrateKbps), (1...240).contains(configuration.framesPerSecond),
              (-16...16).contains(configuration.cpuUsed), (1...Int(Int32.max)).contains(configuration.keyframeInterval),
              (1...16).contains(configuration.threads)
        else {
            throw CodecError(.invalidArgument, "VP8 settings out of range: \(configuration)")
        }
        let context = UnsafeMutablePointer<vpx_codec_ctx_t>.allocate(capacity: 1)
        context.initialize(to: vpx_codec_ctx_t())
        let cfg = UnsafeMutablePointer<vpx_codec_enc_cfg_t>.allocate(capacity: 1)
        cfg.initialize(to: vpx_codec_enc_cfg_t())
        do {
            try Self.setUp(context: context, config: cfg, configuration)
        } catch {
            // setUp destroyed the codec if it had started it; only the memory is left.
            cfg.deallocate()
            context.deallocate()
            throw error
        }
        self.configuration = configuration
        self.context = context
        self.encoderConfig = cfg
    }

    /// Fills in the libvpx configuration and starts the codec; on failure nothing is left running.
    private static func setUp(context: UnsafeMutablePointer<vpx_codec_ctx_t>, config cfg: UnsafeMutablePointer<vpx_codec_enc_cfg_t>,
                              _ configuration: Configuration) throws(CodecError) {
        guard CCodecShims_vp8_enc_config_default(cfg) == 0 else {
            throw CodecError(.codecFailure, "libvpx has no default VP8 encoder configuration")
        }
        cfg.pointee.g_w = UInt32(configuration.width)
        cfg.pointee.g_h = UInt32(configuration.height)
        cfg.pointee.g_threads = UInt32(configuration.threads)
        // Timestamps are RTP timestamps, so the time base is the 90 kHz RTP clock.
        cfg.pointee.g_timebase = vpx_rational(num: 1, den: Int32(clockRate))
        cfg.pointee.g_lag_in_frames = 0
        cfg.pointee.g_error_resilient = vpx_codec_er_flags_t(VPX_ERROR_RESILIENT_DEFAULT)
        cfg.pointee.g_pass = VPX_RC_ONE_PASS
        cfg.pointee.rc_end_usage = VPX_CBR
        cfg.pointee.rc_target_bitrate = UInt32(configuration.bitrateKbps)
        cfg.pointee.rc_min_quantizer = 2
        cfg.pointee.rc_max_quantizer = 56
        cfg.pointee.rc_undershoot_pct = 100
        cfg.pointee.rc_overshoot_pct = 15
        cfg.pointee.rc_buf_initial_sz = 500
        cfg.pointee.rc_buf_optimal_sz = 600
        cfg.pointee.rc_buf_sz = 1_000
        cfg.pointee.rc_dropframe_thresh = configuration.allowFrameDropping ? 30 : 0
        cfg.pointee.kf_mode = VPX_KF_AUTO
        cfg.pointee.kf_min_dist = 0
        cfg.pointee.kf_max_dist = UInt32(configuration.keyframeInterval)

        let initResult = CCodecShims_vp8_enc_init(context, cfg)
        guard initResult == 0 else {
            let reason = String(cString: vpx_codec_err_to_string(vpx_codec_err_t(rawValue: UInt32(initResult))))
            throw CodecError(.codecFailure, "vpx_codec_enc_init failed for \(configuration.width)×\(configuration.height): \(reason)")
        }
        let isScreen = configuration.content == .screen
        let controls: [(Int32, Int32, String)] = [
            (Int32(VP8E_SET_CPUUSED.rawValue), Int32(configuration.cpuUsed), "cpu-used"),
            (Int32(VP8E_SET_NOISE_SENSITIVITY.rawValue), 0, "noise sensitivity"),
            // One token partition: the packetizer does not split along partitions.
            (Int32(VP8E_SET_TOKEN_PARTITIONS.rawValue), 0, "token partitions"),
            (Int32(VP8E_SET_STATIC_THRESHOLD.rawValue), isScreen ? 100 : 1, "static threshold"),
            // Keyframes may take at most this share of the per-frame budget, in percent.
            (Int32(VP8E_SET_MAX_INTRA_BITRATE_PCT.rawValue), Int32(max(300, 15 * configuration.framesPerSecond)), "max intra bitrate"),
            (Int32(VP8E_SET_SCREEN_CONTENT_MODE.rawValue), isScreen ? 1 : 0, "screen content mode"),
        ]
        for (id, value, name) in controls where CCodecShims_vpx_control_int(context, id, value) != 0 {
            let reason = String(cString: vpx_codec_error(context))
            vpx_codec_destroy(context)
            throw CodecError(.codecFailure, "libvpx refused \(name) = \(value): \(reason)")
        }
    }

    deinit {
        vpx_codec_destroy(context)
        encoderConfig.deallocate()
        context.deallocate()
    }

    /// Changes the target bitrate while running, as a rate controller does after feedback.
    public func setBitrate(kbps: Int) throws(CodecError) {
        guard (1...Self.maximumBitrateKbps).contains(kbps) else {
            throw CodecError(.invalidArgument, "VP8 bitrate must be 1–\(Self.maximumBitrateKbps) kb/s, got \(kbps)")
        }
        encoderConfig.pointee.rc_target_bitrate = UInt32(kbps)
        guard vpx_codec_enc_config_set(context, encoderConfig) == VPX_CODEC_OK else {
            throw CodecError(.codecFailure, "libvpx refused bitrate \(kbps) kb/s: \(String(cString: vpx_codec_error(context)))")
        }
        configuration.bitrateKbps = kbps
    }

    /// Makes the next encoded frame a keyframe, as a sender does on PLI (RFC 4585 §6.3.1) or FIR (RFC 5104 §4.3.1).
    public func requestKeyframe() {
        keyframeRequested = true
    }

    /// Encodes one picture taken at RTP time `timestamp` (90 kHz).
    ///
    /// - Returns: the compressed frame, or `nil` when rate control dropped it.
    /// - Throws: ``CodecError`` `.invalidArgument` for a frame of another size, `.codecFailure` if libvpx fails.
    public func encode(_ frame: VideoFrame, timestamp: UInt32) throws(CodecError) -> EncodedFrame? {
        guard frame.width == configuration.width, frame.height == configuration.height else {
            throw CodecError(.invalidArgument, "VP8 encoder is set up for \(configuration.width)×\(configuration.height), got \(frame.width)×\(frame.height)")
        }
        // VPX_EFLAG_FORCE_KF, a macro Swift does not import.
        let flags: vpx_enc_frame_flags_t = keyframeRequested ? 1 : 0
        let duration = UInt(Self.clockRate / configuration.framesPerSecond)
        var image = vpx_image_t()
        let result: vpx_codec_err_t = frame.y.withUnsafeBufferPointer { y in
            frame.u.withUnsafeBufferPointer { u in
                frame.v.withUnsafeBufferPointer { v in
                    // The planes are only read by libvpx; the C API lacks const on them.
                    vpx_img_wrap(&image, VPX_IMG_FMT_I420, UInt32(frame.width), UInt32(frame.height), 1,
                                 UnsafeMutablePointer(mutating: y.baseAddress))
                    image.planes.0 = UnsafeMutablePointer(mutating: y.baseAddress)
                    image.planes.1 = UnsafeMutablePointer(mutating: u.baseAddress)
                    image.planes.2 = UnsafeMutablePointer(mutating: v.baseAddress)
                    image.stride.0 = Int32(frame.width)
                    image.stride.1 = Int32(frame.chromaWidth)
                    image.stride.2 = Int32(frame.chromaWidth)
                    return vpx_codec_encode(context, &image, vpx_codec_pts_t(timestamp), duration, flags, UInt(VPX_DL_REALTIME))
                }
            }
        }
        guard result == VPX_CODEC_OK else {
            throw CodecError(.codecFailure, "vpx_codec_encode failed: \(String(cString: vpx_codec_error(context)))")
        }
        keyframeRequested = false

        var encoded: EncodedFrame?
        var iterator: vpx_codec_iter_t?
        while let packet = vpx_codec_get_cx_data(context, &iterator) {
            guard packet.pointee.kind == VPX_CODEC_CX_FRAME_PKT else { continue }
            let frameData = packet.pointee.data.frame
            guard let bytes = frameData.buf, frameData.sz > 0 else { continue }
            var data = encoded?.data ?? ByteBuffer()
            data.writeBytes(UnsafeRawBufferPointer(start: bytes, count: Int(frameData.sz)))
            // VPX_FRAME_IS_KEY is 0x1.
            let isKeyframe = (encoded?.isKeyframe ?? false) || frameData.flags & 0x1 != 0
            encoded = EncodedFrame(data: data, isKeyframe: isKeyframe, timestamp: timestamp)
        }
        return encoded
    }
}
