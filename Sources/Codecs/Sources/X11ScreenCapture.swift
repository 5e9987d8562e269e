internal import CXCB
#if canImport(Glibc)
import Glibc
#endif

/// Captures an X11 screen for desktop sharing through XCB, with the MIT-SHM extension when the
/// server offers it: the server writes each picture straight into a shared memory segment, which
/// saves a copy of every frame through the socket. Without MIT-SHM (a remote display) it falls back
/// to plain `GetImage`.
///
/// The picture is converted from the server's 32-bit BGRX to I420 (BT.601 limited range) for the
/// VP8 encoder (use its `.screen` content mode). Not `Sendable`: one capture belongs to one task.
public final class X11ScreenCapture {
    /// The screen's size in pixels.
    public let width: Int
    public let height: Int
    /// Whether pictures come through MIT-SHM.
    public let usesSharedMemory: Bool

    private let connection: OpaquePointer
    private let root: UInt32
    private let segment: UInt32
    private let sharedMemoryID: Int32
    private let sharedMemory: UnsafeMutableRawPointer?

    /// Connects to `display` (for instance ":1"; `nil` uses `$DISPLAY`) and prepares capture of its screen.
    ///
    /// - Throws: ``CodecError`` `.unavailable` when the display cannot be reached or has a depth other
    ///   than 24 or 32 bits.
    public init(display: String? = nil, allowSharedMemory: Bool = true) throws(CodecError) {
        var screenNumber: Int32 = 0
        guard let connection = xcb_connect(display, &screenNumber) else {
            throw CodecError(.unavailable, "cannot connect to X display \(display ?? "$DISPLAY")")
        }
        if xcb_connection_has_error(connection) != 0 {
            xcb_disconnect(connection)
            throw CodecError(.unavailable, "cannot connect to X display \(display ?? "$DISPLAY"): is the X server running and DISPLAY right?")
        }
        var iterator = xcb_setup_roots_iterator(xcb_get_setup(connection))
        for _ in 0..<max(0, Int(screenNumber)) where iterator.rem > 1 { xcb_screen_next(&iterator) }
        guard let screen = iterator.data?.pointee else {
            xcb_disconnect(connection)
            throw CodecError(.unavailable, "X display \(display ?? "$DISPLAY") has no screen \(screenNumber)")
        }
        guard screen.root_depth == 24 || screen.root_depth == 32 else {
            xcb_disconnect(connection)
            throw CodecError(.unavailable, "X screen depth \(screen.root_depth) is not supported; capture needs 24 or 32 bits per pixel")
        }
        self.connection = connection
        self.root = screen.root
        self.width = Int(screen.width_in_pixels)
        self.height = Int(screen.height_in_pixels)

        let shared = allowSharedMemory ? Self.attachSharedMemory(connection, bytes: width * height * 4) : nil
        self.usesSharedMemory = shared != nil
        self.segment = shared?.segment ?? 0
        self.sharedMemoryID = shared?.id ?? -1
        self.sharedMemory = shared?.address
    }

    deinit {
        if let sharedMemory {
            xcb_shm_detach(connection, segment)
            xcb_flush(connection)
            shmdt(sharedMemory)
        }
        xcb_disconnect(connection)
    }

    /// Sets up a System V shared memory segment the X server can write into; `nil` when MIT-SHM is
    /// not available (the extension is missing, or the server cannot attach, as over a network).
    private static func attachSharedMemory(_ connection: OpaquePointer, bytes: Int) -> (segment: UInt32, id: Int32, address: UnsafeMutableRawPointer)? {
        guard let version = xcb_shm_query_version_reply(connection, xcb_shm_query_version(connection), nil) else { return nil }
        free(version)
        // IPC_PRIVATE is 0; the segment is readable and writable by this user only.
        let id = shmget(0, bytes, IPC_CREAT | 0o600)
        guard id >= 0 else { return nil }
        guard let address = shmat(id, nil, 0), address != UnsafeMutableRawPointer(bitPattern: -1) else {
            shmctl(id, IPC_RMID, nil)
            return nil
        }
        let segment = xcb_generate_id(connection)
        let error = xcb_request_check(connection, xcb_shm_attach_checked(connection, segment, UInt32(id), 0))
        // Marked for removal now: it disappears once both sides have detached, even if we crash.
        shmctl(id, IPC_RMID, nil)
        if let error {
            free(error)
            shmdt(address)
            return nil
        }
        return (segment, id, address)
    }

    /// Captures the whole screen as an I420 picture.
    ///
    /// - Throws: ``CodecError`` `.unavailable` when the server refuses the request (the display went away).
    public func capture() throws(CodecError) -> VideoFrame {
        try withBGRX { pixels, stride throws(CodecError) in
            try Self.convertToI420(pixels, stride: stride, width: width, height: height)
        }
    }

    /// Captures the whole screen and returns the pixel at (`x`, `y`) as (red, green, blue), for checks.
    public func capturePixel(x: Int, y: Int) throws(CodecError) -> (red: UInt8, green: UInt8, blue: UInt8) {
        guard (0..<width).contains(x), (0..<height).contains(y) else {
            throw CodecError(.invalidArgument, "pixel (\(x), \(y)) is outside the \(width)×\(height) screen")
        }
        return try withBGRX { pixels, stride in
            let offset = y * stride + x * 4
            return (pixels[offset + 2], pixels[offset + 1], pixels[offset])
        }
    }

    private func withBGRX<T>(_ body: (UnsafeBufferPointer<UInt8>, Int) throws(CodecError) -> T) throws(CodecError) -> T {
        let zPixmap = UInt8(XCB_IMAGE_FORMAT_Z_PIXMAP.rawValue)
        if let sharedMemory {
            let cookie = xcb_shm_get_image(connection, root, 0, 0, UInt16(width), UInt16(height), ~0, zPixmap, segment, 0)
            guard let reply = xcb_shm_get_image_reply(connection, cookie, nil) else {
                throw CodecError(.unavailable, "the X server refused a MIT-SHM GetImage of \(width)×\(height)")
            }
            free(reply)
            let pixels = UnsafeBufferPointer(start: sharedMemory.assumingMemoryBound(to: UInt8.self), count: width * height * 4)
            return try body(pixels, width * 4)
        }
        let cookie = xcb_get_image(connection, zPixmap, root, 0, 0, UInt16(width), UInt16(height), ~0)
        guard let reply = xcb_get_image_reply(connection, cookie, nil) else {
            throw CodecError(.unavailable, "the X server refused a GetImage of \(width)×\(height)")
        }
        defer { free(reply) }
        let length = Int(xcb_get_image_data_length(reply))
        guard let data = xcb_get_image_data(reply), length >= width * height * 4 else {
            throw CodecError(.unavailable, "GetImage returned \(length) bytes for \(width)×\(height) at 32 bits per pixel")
        }
        return try body(UnsafeBufferPointer(start: data, count: length), length / height)
    }

    /// BGRX (32 bits, little-endian) to I420 with BT.601 limited-range coefficients in 8-bit fixed point.
    static func convertToI420(_ pixels: UnsafeBufferPointer<UInt8>, stride: Int, width: Int, height: Int) throws(CodecError) -> VideoFrame {
        let chromaWidth = (width + 1) / 2
        let chromaHeight = (height + 1) / 2
        var y = [UInt8](repeating: 0, count: width * height)
        var u = [UInt8](repeating: 128, count: chromaWidth * chromaHeight)
        var v = [UInt8](repeating: 128, count: chromaWidth * chromaHeight)
        y.withUnsafeMutableBufferPointer { luma in
            for row in 0..<height {
                let line = row * stride
                let out = row * width
                for column in 0..<width {
                    let offset = line + column * 4
                    let b = Int(pixels[offset]), g = Int(pixels[offset + 1]), r = Int(pixels[offset + 2])
                    luma[out + column] = UInt8(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16)
                }
            }
        }
        u.withUnsafeMutableBufferPointer { cb in
            v.withUnsafeMutableBufferPointer { cr in
                for chromaRow in 0..<chromaHeight {
                    for chromaColumn in 0..<chromaWidth {
                        var r = 0, g = 0, b = 0, count = 0
                        for row in (chromaRow * 2)..<min(chromaRow * 2 + 2, height) {
                            for column in (chromaColumn * 2)..<min(chromaColumn * 2 + 2, width) {
                                let offset = row * stride + column * 4
                                b += Int(pixels[offset]); g += Int(pixels[offset + 1]); r += Int(pixels[offset + 2])
                                count += 1
                            }
                        }
                        r /= count; g /= count; b /= count
                        let index = chromaRow * chromaWidth + chromaColumn
                        cb[index] = UInt8(max(0, min(255, ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128)))
                        cr[index] = UInt8(max(0, min(255, ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128)))
                    }
                }
            }
        }
        return try VideoFrame(width: width, height: height, y: y, u: u, v: v)
    }
}
