public import NIOCore

/// A client's WebSocket messages (RFC 6455 §5), parsed from the connection's bytes as they are
/// read (issue 17). It does in one step what NIO's frame decoder, its protocol error handler and
/// its fragment aggregator did as three handlers of the pipeline: each was a hop with a frame
/// value of its own for every frame. It yields whole messages: a text or binary message put
/// together from its fragments (§5.4), or a control frame. A frame that breaks the protocol is a
/// ``Violation`` carrying the close code §7.4.1 gives it; the connection then fails (§7.1.7).
///
/// Memory: bytes of an incomplete frame are kept (the buffer sized for the whole frame once its
/// header is in, up to 64 KiB; it grows as bytes come); between frames nothing is, so an idle
/// connection holds no buffer here.
public struct WebSocketFrameReader: Sendable {
    public enum Message: Equatable, Sendable {
        /// A text message, unmasked; invalid UTF-8 repaired (U+FFFD), as NIO's `readString` did.
        case text(String)
        /// A binary message (the node takes none: only its size counted against the limits).
        case binary
        /// A Ping with its application data (§5.5.2): the Pong carries it back.
        case ping(ByteBuffer)
        case pong
        /// A Close, with its status code if it has one (§5.5.1).
        case close(code: UInt16?)
    }

    /// Why the connection fails: the close code and a reason for the Close frame.
    public struct Violation: Error, Equatable, Sendable {
        public let code: UInt16
        public let reason: String

        /// §7.4.1: 1002, the endpoint is terminating the connection due to a protocol error.
        static func protocolError(_ reason: String) -> Violation { Violation(code: 1002, reason: reason) }
        /// §7.4.1: 1009, a message too big to process.
        static func tooBig(_ reason: String) -> Violation { Violation(code: 1009, reason: reason) }
    }

    /// The largest message, in bytes of payload, fragments together.
    public let maxMessage: Int
    /// The most fragments one message may come in.
    public let maxFragments: Int

    /// The bytes of a frame not complete yet, from its first byte.
    private var partial: ByteBuffer?
    /// A fragmented message being put together: its opcode, its payload so far, its fragments.
    private var fragmented: (opcode: UInt8, payload: ByteBuffer, count: Int)?

    /// The most room set aside for an incomplete frame before its bytes have come.
    static let reserveLimit = 64 * 1024

    /// Bytes held between reads: those of an incomplete frame and of an unfinished message.
    var heldBytes: Int { (partial?.readableBytes ?? 0) + (fragmented?.payload.readableBytes ?? 0) }
    /// Bytes of storage set aside between reads (what ``heldBytes`` has room for).
    var reservedBytes: Int { (partial?.capacity ?? 0) + (fragmented?.payload.capacity ?? 0) }

    public init(maxMessage: Int, maxFragments: Int) {
        self.maxMessage = maxMessage
        self.maxFragments = maxFragments
    }

    /// Takes `bytes` as read from the socket and calls `body` with each message they complete,
    /// in order. After a violation nothing more is to be read: the caller fails the connection.
    public mutating func read(_ bytes: ByteBuffer, _ body: (Message) -> Void) throws(Violation) {
        var buffer: ByteBuffer
        if var held = partial {
            partial = nil
            var bytes = bytes
            held.writeBuffer(&bytes)
            buffer = held
        } else {
            buffer = bytes
        }
        while true {
            switch try Self.nextFrame(&buffer, maxMessage: maxMessage, fragmentedSoFar: fragmented?.payload.readableBytes ?? 0) {
            case .frame(let frame):
                try take(frame, body)
            case .needs(let total):
                guard buffer.readableBytes > 0 else { return }
                // Copied out, so that the socket's receive buffer is not held by a slice of it.
                // Room for the whole frame only up to `reserveLimit`: a header alone must not
                // make the node set aside a megabyte; beyond it, the buffer grows as bytes come.
                var rest = ByteBufferAllocator().buffer(capacity: max(buffer.readableBytes, min(total, Self.reserveLimit)))
                rest.writeBuffer(&buffer)
                partial = rest
                return
            }
        }
    }

    /// One frame of a client: its header's fields and its payload, still masked.
    struct Frame {
        var fin: Bool
        var opcode: UInt8
        /// The masking key, its first byte the most significant (as on the wire, §5.3).
        var key: UInt32
        var payload: ByteBuffer

        /// The payload unmasked, in a buffer of its own.
        var unmasked: ByteBuffer {
            var data = ByteBufferAllocator().buffer(capacity: payload.readableBytes)
            WebSocketFrameReader.unmask(payload, key: key, into: &data)
            return data
        }
    }

    enum Next {
        case frame(Frame)
        /// The frame is not complete: this many bytes make it (or at least make its header).
        case needs(Int)
    }

    /// The frame at the front of `buffer`, taken out of it, once it is complete. The header's
    /// rules are checked as soon as it is in, so a frame announced too big fails before its
    /// payload arrives.
    static func nextFrame(_ buffer: inout ByteBuffer, maxMessage: Int, fragmentedSoFar: Int) throws(Violation) -> Next {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self),
              let second = buffer.getInteger(at: start + 1, as: UInt8.self) else { return .needs(14) }
        let fin = first & 0x80 != 0
        let opcode = first & 0x0F
        // §5.2: RSV1-3 must be 0 unless an extension says otherwise; this node negotiates none.
        guard first & 0x70 == 0 else { throw .protocolError("reserved bits set") }
        // §5.1: a client masks every frame it sends; the server fails a connection that does not.
        guard second & 0x80 != 0 else { throw .protocolError("an unmasked frame from a client") }
        var length = Int(second & 0x7F)
        var header = 2
        if length == 126 {
            guard let extended = buffer.getInteger(at: start + 2, as: UInt16.self) else { return .needs(8) }
            length = Int(extended)
            header = 4
        } else if length == 127 {
            guard let extended = buffer.getInteger(at: start + 2, as: UInt64.self) else { return .needs(14) }
            // §5.2: the most significant bit of a 64-bit length must be 0.
            guard extended >> 63 == 0 else { throw .protocolError("a frame length with its high bit set") }
            guard extended <= UInt64(maxMessage) else { throw .tooBig("a frame over \(maxMessage) bytes") }
            length = Int(extended)
            header = 10
        }
        switch opcode {
        case 0x8, 0x9, 0xA:
            // §5.5: control frames are not fragmented and carry at most 125 bytes.
            guard fin else { throw .protocolError("a fragmented control frame") }
            guard length <= 125 else { throw .protocolError("a control frame over 125 bytes") }
        case 0x0, 0x1, 0x2:
            guard length <= maxMessage - (opcode == 0 ? fragmentedSoFar : 0) else {
                throw .tooBig("a message over \(maxMessage) bytes")
            }
        default:
            throw .protocolError("an unknown opcode \(opcode)")
        }
        guard let key = buffer.getInteger(at: start + header, as: UInt32.self),
              buffer.readableBytes >= header + 4 + length else { return .needs(header + 4 + length) }
        buffer.moveReaderIndex(forwardBy: header + 4)
        let payload = buffer.readSlice(length: length)!
        return .frame(Frame(fin: fin, opcode: opcode, key: key, payload: payload))
    }

    private mutating func take(_ frame: Frame, _ body: (Message) -> Void) throws(Violation) {
        switch frame.opcode {
        case 0x1, 0x2:
            // §5.4: the fragments of one message are not interleaved with another's.
            guard fragmented == nil else { throw .protocolError("a new message before the last one's final fragment") }
            if frame.fin {
                body(frame.opcode == 0x1 ? .text(Self.text(frame.payload, key: frame.key)) : .binary)
            } else {
                fragmented = (frame.opcode, frame.unmasked, 1)
            }
        case 0x0:
            guard var message = fragmented else { throw .protocolError("a continuation frame without a message") }
            fragmented = nil  // the payload's storage stays uniquely referenced while it grows
            message.count += 1
            guard message.count <= maxFragments else { throw .tooBig("a message in more than \(maxFragments) fragments") }
            Self.unmask(frame.payload, key: frame.key, into: &message.payload)
            if frame.fin {
                body(message.opcode == 0x1 ? .text(String(buffer: message.payload)) : .binary)
            } else {
                fragmented = message
            }
        case 0x9:
            body(.ping(frame.unmasked))
        case 0xA:
            body(.pong)
        default:  // 0x8; nextFrame lets no other opcode through
            var data = frame.unmasked
            // §5.5.1: a Close's body, if any, starts with a 2-byte status code.
            guard data.readableBytes != 1 else { throw .protocolError("a Close with a 1-byte body") }
            let code = data.readInteger(as: UInt16.self)
            if let code, !Self.isSendable(closeCode: code) {
                throw .protocolError("a Close with status code \(code), which no endpoint sends")
            }
            body(.close(code: code))
        }
    }

    /// Whether an endpoint may send `code` in a Close (§7.4.1, §7.4.2, IANA's registry): 1005,
    /// 1006 and 1015 only report what happened locally, and codes under 1000 or unassigned in
    /// 1016–2999 are not used; 3000–4999 belong to libraries and applications.
    static func isSendable(closeCode code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }

    /// A text frame's payload as a string, unmasked (§5.3) straight into the string's storage:
    /// one copy per frame. Invalid UTF-8 is repaired as `String(decoding:as:)` does.
    static func text(_ payload: ByteBuffer, key: UInt32) -> String {
        payload.withUnsafeReadableBytes { bytes in
            String(unsafeUninitializedCapacity: bytes.count) { out in
                unmask(bytes, key: key, into: UnsafeMutableRawBufferPointer(out))
                return bytes.count
            }
        }
    }

    static func unmask(_ payload: ByteBuffer, key: UInt32, into out: inout ByteBuffer) {
        let count = payload.readableBytes
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { target in
            payload.withUnsafeReadableBytes { unmask($0, key: key, into: target) }
            return count
        }
    }

    /// §5.3: byte i of the payload XOR byte i mod 4 of the key; `target` has room for `bytes`.
    private static func unmask(_ bytes: UnsafeRawBufferPointer, key: UInt32, into target: UnsafeMutableRawBufferPointer) {
        withUnsafeBytes(of: key.bigEndian) { key in
            for index in 0..<bytes.count { target[index] = bytes[index] ^ key[index & 3] }
        }
    }
}

extension ByteBuffer {
    /// Bytes of the header of a server's frame with `length` bytes of payload (§5.2: no mask).
    static func webSocketHeaderLength(payload length: Int) -> Int {
        length < 126 ? 2 : length <= 0xFFFF ? 4 : 10
    }

    /// A server's frame header: FIN set, not masked (§5.1), the length in its shortest form (§5.2).
    mutating func writeWebSocketHeader(opcode: UInt8, length: Int) {
        writeInteger(0x80 | opcode)
        if length < 126 {
            writeInteger(UInt8(length))
        } else if length <= 0xFFFF {
            writeInteger(UInt8(126))
            writeInteger(UInt16(length))
        } else {
            writeInteger(UInt8(127))
            writeInteger(UInt64(length))
        }
    }
}
