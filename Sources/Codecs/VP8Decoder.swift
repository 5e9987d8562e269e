internal import CCodecShims
internal import CVPX
import NIOCore

/// A VP8 decoder (RFC 6386) through libvpx.
///
/// Not thread-safe: one decoder belongs to one receiving stream and is used from one task at a time.
public final class VP8Decoder {
    private let context: UnsafeMutablePointer<vpx_codec_ctx_t>

    /// Creates a decoder.
    ///
    /// - Throws: ``CodecError`` `.codecFailure` when libvpx cannot start a VP8 decoder.
    public init(threads: Int = 1) throws(CodecError) {
        let context = UnsafeMutablePointer<vpx_codec_ctx_t>.allocate(capacity: 1)
        context.initialize(to: vpx_codec_ctx_t())
        let result = CCodecShims_vp8_dec_init(context, UInt32(max(1, threads)))
        guard result == 0 else {
            context.deallocate()
            throw CodecError(.codecFailure, "vpx_codec_dec_init failed: \(String(cString: vpx_codec_err_to_string(vpx_codec_err_t(rawValue: UInt32(result)))))")
        }
        self.context = context
    }

    deinit {
        vpx_codec_destroy(context)
        context.deallocate()
    }

    /// Whether the last decoded frame referenced missing or damaged data (libvpx `VP8D_GET_FRAME_CORRUPTED`):
    /// the receiver should send a PLI (RFC 4585 §6.3.1).
    public private(set) var lastFrameCorrupted = false

    /// Decodes one compressed frame.
    ///
    /// - Returns: the picture, or `nil` when the frame produced none (a dropped or invisible frame).
    /// - Throws: ``CodecError`` `.codecFailure` for a corrupt bitstream, for instance an inter frame
    ///   before the first keyframe.
    public func decode(_ data: ByteBuffer) throws(CodecError) -> VideoFrame? {
        let result = data.withUnsafeReadableBytes { bytes in
            vpx_codec_decode(context, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt32(bytes.count), nil, 0)
        }
        guard result == VPX_CODEC_OK else {
            let detail = vpx_codec_error_detail(context).map { String(cString: $0) } ?? ""
            throw CodecError(.codecFailure, "vpx_codec_decode failed: \(String(cString: vpx_codec_error(context))) \(detail)")
        }
        var corrupted: Int32 = 0
        lastFrameCorrupted = CCodecShims_vpx_control_get_int(context, Int32(VP8D_GET_FRAME_CORRUPTED.rawValue), &corrupted) == 0 && corrupted != 0

        var iterator: vpx_codec_iter_t?
        var picture: VideoFrame?
        while let image = vpx_codec_get_frame(context, &iterator) {
            picture = try Self.copy(image.pointee)
        }
        return picture
    }

    private static func copy(_ image: vpx_image_t) throws(CodecError) -> VideoFrame {
        guard image.fmt == VPX_IMG_FMT_I420 else {
            throw CodecError(.codecFailure, "VP8 decoder produced image format \(image.fmt.rawValue), expected I420")
        }
        let width = Int(image.d_w)
        let height = Int(image.d_h)
        let chromaWidth = (width + 1) / 2
        let chromaHeight = (height + 1) / 2
        func plane(_ pointer: UnsafeMutablePointer<UInt8>?, stride: Int32, width: Int, height: Int) -> [UInt8] {
            guard let pointer else { return [UInt8](repeating: 0, count: width * height) }
            var out = [UInt8]()
            out.reserveCapacity(width * height)
            for row in 0..<height {
                out.append(contentsOf: UnsafeBufferPointer(start: pointer + row * Int(stride), count: width))
            }
            return out
        }
        return try VideoFrame(
            width: width, height: height,
            y: plane(image.planes.0, stride: image.stride.0, width: width, height: height),
            u: plane(image.planes.1, stride: image.stride.1, width: chromaWidth, height: chromaHeight),
            v: plane(image.planes.2, stride: image.stride.2, width: chromaWidth, height: chromaHeight))
    }
}
