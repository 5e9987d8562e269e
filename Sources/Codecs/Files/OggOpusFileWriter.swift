import NIOCore

/// Records Opus packets, as they came in RTP (RFC 7587), into an Ogg Opus file (RFC 7845) without
/// decoding them: what `.opus` players and ffprobe read.
///
/// The first page holds the identification header (OpusHead, §5.1), the second the comment header
/// (OpusTags, §5.2); audio pages carry up to about a second of packets each, with the granule
/// position counting 48 kHz samples including the pre-skip (§4). The last page is flagged end of stream.
public final class OggOpusFileWriter {
    /// The file's path.
    public var path: String { file.path }
    /// Packets written so far.
    public private(set) var packetCount = 0
    private let file: MediaFileWriter
    private let serialNumber: UInt32
    private var pageSequence: UInt32 = 0
    private var granulePosition: Int64
    private var pending: [ByteBuffer] = []
    private var pendingSegments = 0

    /// Packets per audio page: 50 × 20 ms.
    static let packetsPerPage = 50

    /// Creates the file (replacing any) and writes the two header pages.
    ///
    /// - Parameter preSkip: samples the decoder discards at the start: the encoder's lookahead
    ///   (libopus reports 312 at 48 kHz for VoIP, RFC 7845 §4.2).
    /// - Throws: ``CodecError`` `.io` when the file cannot be created, `.invalidArgument` for a channel count other than 1 or 2.
    public init(path: String, channels: Int = 1, preSkip: Int = 312, serialNumber: UInt32 = 0x6D65_7368) throws(CodecError) {
        guard channels == 1 || channels == 2, (0...Int(UInt16.max)).contains(preSkip) else {
            throw CodecError(.invalidArgument, "Ogg Opus with mapping family 0 has 1 or 2 channels, got \(channels)")
        }
        self.serialNumber = serialNumber
        self.granulePosition = 0
        file = try MediaFileWriter(path: path)
        var head = ByteBuffer()
        head.writeString("OpusHead")
        head.writeMultipleIntegers(UInt8(1), UInt8(channels), UInt16(preSkip), UInt32(OpusAudioEncoder.sampleRate), Int16(0), UInt8(0),
                                   endianness: .little)
        var tags = ByteBuffer()
        tags.writeString("OpusTags")
        let vendor = "meshnode"
        tags.writeInteger(UInt32(vendor.utf8.count), endianness: .little)
        tags.writeString(vendor)
        tags.writeInteger(UInt32(0), endianness: .little)
        try writePage(OggPage(flags: .beginningOfStream, granulePosition: 0, serialNumber: serialNumber, sequenceNumber: 0, packets: [head]))
        try writePage(OggPage(flags: [], granulePosition: 0, serialNumber: serialNumber, sequenceNumber: 0, packets: [tags]))
    }

    /// Appends one Opus packet (an RTP payload, RFC 7587 §4.2).
    ///
    /// - Throws: ``CodecError`` when the packet's TOC is invalid or writing fails.
    public func write(packet: ByteBuffer) throws(CodecError) {
        let payload = try OpusPayload(parsing: packet)
        let segments = OggPage.segments(for: packet.readableBytes)
        if pendingSegments + segments > 255 || pending.count >= Self.packetsPerPage {
            try flush(endOfStream: false)
        }
        pending.append(packet)
        pendingSegments += segments
        granulePosition += Int64(payload.samplesPerChannel)
        packetCount += 1
    }

    /// Writes the last page, flagged end of stream, and closes the file.
    public func close() throws(CodecError) {
        guard !file.isClosed else { return }
        try flush(endOfStream: true)
        try file.close()
    }

    deinit {
        try? close()
    }

    private func flush(endOfStream: Bool) throws(CodecError) {
        guard !pending.isEmpty || endOfStream else { return }
        try writePage(OggPage(flags: endOfStream ? .endOfStream : [], granulePosition: granulePosition, serialNumber: serialNumber,
                              sequenceNumber: 0, packets: pending))
        pending = []
        pendingSegments = 0
    }

    private func writePage(_ page: OggPage) throws(CodecError) {
        var page = page
        page.sequenceNumber = pageSequence
        pageSequence += 1
        try file.write(page.serialized())
    }
}
