import NIOCore

/// The VP8 payload descriptor at the start of every VP8 RTP payload (RFC 7741 §4.2).
public struct VP8PayloadDescriptor: Hashable, Sendable {
    /// N: the frame is not used as a reference and may be discarded.
    public var nonReference: Bool
    /// S: the payload starts a VP8 partition.
    public var startOfPartition: Bool
    /// PID: the partition index, 0–7.
    public var partitionIndex: UInt8
    /// The picture ID (I bit), 7 or 15 bits.
    public var pictureID: UInt16?
    /// Whether ``pictureID`` is sent in its 15-bit form (M bit). Browsers use the 15-bit form.
    public var longPictureID: Bool
    /// TL0PICIDX (L bit): the running index of temporal base layer frames.
    public var tl0PictureIndex: UInt8?
    /// TID (T bit): the temporal layer index, 0–3.
    public var temporalLayerIndex: UInt8?
    /// Y: layer sync bit; meaningful only with ``temporalLayerIndex``.
    public var layerSync: Bool
    /// KEYIDX (K bit): the temporal key frame index, 0–31.
    public var keyIndex: UInt8?

    /// Creates a descriptor.
    public init(
        nonReference: Bool = false, startOfPartition: Bool, partitionIndex: UInt8 = 0, pictureID: UInt16? = nil,
        longPictureID: Bool = true, tl0PictureIndex: UInt8? = nil, temporalLayerIndex: UInt8? = nil,
        layerSync: Bool = false, keyIndex: UInt8? = nil
    ) {
        self.nonReference = nonReference
        self.startOfPartition = startOfPartition
        self.partitionIndex = partitionIndex
        self.pictureID = pictureID
        self.longPictureID = longPictureID
        self.tl0PictureIndex = tl0PictureIndex
        self.temporalLayerIndex = temporalLayerIndex
        self.layerSync = layerSync
        self.keyIndex = keyIndex
    }

    /// Whether this payload begins a frame: S set and partition index 0 (RFC 7741 §4.4).
    public var startsFrame: Bool { startOfPartition && partitionIndex == 0 }

    /// Reads the descriptor from the front of an RTP payload, leaving `payload` at the VP8 data.
    ///
    /// - Throws: ``RTPError`` `.truncated` when an announced field is missing or no VP8 data follows.
    public init(reading payload: inout ByteBuffer) throws(RTPError) {
        guard let first = payload.readInteger(as: UInt8.self) else {
            throw RTPError(.truncated, "empty VP8 RTP payload")
        }
        self.init(startOfPartition: first & 0x10 != 0, partitionIndex: first & 0x07)
        nonReference = first & 0x20 != 0
        if first & 0x80 != 0 {
            guard let extended = payload.readInteger(as: UInt8.self) else {
                throw RTPError(.truncated, "VP8 descriptor sets X but lacks the extension octet")
            }
            if extended & 0x80 != 0 {
                guard let high = payload.readInteger(as: UInt8.self) else {
                    throw RTPError(.truncated, "VP8 descriptor sets I but lacks the picture ID")
                }
                if high & 0x80 != 0 {
                    guard let low = payload.readInteger(as: UInt8.self) else {
                        throw RTPError(.truncated, "VP8 descriptor announces a 15-bit picture ID but has one octet")
                    }
                    pictureID = UInt16(high & 0x7F) << 8 | UInt16(low)
                    longPictureID = true
                } else {
                    pictureID = UInt16(high)
                    longPictureID = false
                }
            }
            if extended & 0x40 != 0 {
                guard let index = payload.readInteger(as: UInt8.self) else {
                    throw RTPError(.truncated, "VP8 descriptor sets L but lacks TL0PICIDX")
                }
                tl0PictureIndex = index
            }
            if extended & 0x30 != 0 {
                guard let layer = payload.readInteger(as: UInt8.self) else {
                    throw RTPError(.truncated, "VP8 descriptor sets T or K but lacks the TID/KEYIDX octet")
                }
                if extended & 0x20 != 0 {
                    temporalLayerIndex = layer >> 6
                    layerSync = layer & 0x20 != 0
                }
                if extended & 0x10 != 0 { keyIndex = layer & 0x1F }
            }
        }
        guard payload.readableBytes > 0 else {
            throw RTPError(.truncated, "VP8 RTP payload has a descriptor but no VP8 data")
        }
    }

    /// The descriptor's size on the wire.
    public var encodedSize: Int {
        let hasExtension = pictureID != nil || tl0PictureIndex != nil || temporalLayerIndex != nil || keyIndex != nil
        guard hasExtension else { return 1 }
        var size = 2
        if pictureID != nil { size += longPictureID ? 2 : 1 }
        if tl0PictureIndex != nil { size += 1 }
        if temporalLayerIndex != nil || keyIndex != nil { size += 1 }
        return size
    }

    /// Appends the descriptor's wire form.
    ///
    /// - Throws: ``RTPError`` `.invalidArgument` when a field exceeds its width.
    public func write(into buffer: inout ByteBuffer) throws(RTPError) {
        guard partitionIndex <= 7 else {
            throw RTPError(.invalidArgument, "VP8 partition index is 3 bits, got \(partitionIndex)")
        }
        if let pictureID, pictureID > (longPictureID ? 0x7FFF : 0x7F) {
            throw RTPError(.invalidArgument, "VP8 picture ID \(pictureID) exceeds its \(longPictureID ? 15 : 7)-bit form")
        }
        if let temporalLayerIndex, temporalLayerIndex > 3 {
            throw RTPError(.invalidArgument, "VP8 TID is 2 bits, got \(temporalLayerIndex)")
        }
        if let keyIndex, keyIndex > 31 {
            throw RTPError(.invalidArgument, "VP8 KEYIDX is 5 bits, got \(keyIndex)")
        }
        let hasExtension = encodedSize > 1
        let first: UInt8 = (hasExtension ? 0x80 : 0) | (nonReference ? 0x20 : 0) | (startOfPartition ? 0x10 : 0) | partitionIndex
        buffer.writeInteger(first)
        guard hasExtension else { return }
        let extended: UInt8 = (pictureID != nil ? 0x80 : 0) | (tl0PictureIndex != nil ? 0x40 : 0)
            | (temporalLayerIndex != nil ? 0x20 : 0) | (keyIndex != nil ? 0x10 : 0)
        buffer.writeInteger(extended)
        if let pictureID {
            if longPictureID {
                buffer.writeInteger(0x8000 | pictureID)
            } else {
                buffer.writeInteger(UInt8(pictureID))
            }
        }
        if let tl0PictureIndex { buffer.writeInteger(tl0PictureIndex) }
        if temporalLayerIndex != nil || keyIndex != nil {
            buffer.writeInteger((temporalLayerIndex ?? 0) << 6 | (layerSync ? 0x20 : 0) | (keyIndex ?? 0))
        }
    }
}
