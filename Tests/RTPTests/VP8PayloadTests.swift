import NIOCore
import Testing
import TestSupport
@testable import RTP

@Suite("VP8 RTP payload (RFC 7741)")
struct VP8PayloadTests {
    @Test("descriptor with a 15-bit picture ID (RFC 7741 §4.2)")
    func longPictureID() throws {
        var payload = hexBuffer("90 80 81 23 9d 01 2a")
        let descriptor = try VP8PayloadDescriptor(reading: &payload)
        #expect(descriptor.startOfPartition)
        #expect(descriptor.partitionIndex == 0)
        #expect(descriptor.pictureID == 0x0123)
        #expect(descriptor.longPictureID)
        #expect(descriptor.startsFrame)
        #expect(payload == hexBuffer("9d 01 2a"))
        var out = ByteBuffer()
        try descriptor.write(into: &out)
        #expect(out == hexBuffer("90 80 81 23"))
    }

    @Test("descriptor with every optional field: 7-bit picture ID, TL0PICIDX, TID/Y/KEYIDX")
    func allFields() throws {
        let descriptor = VP8PayloadDescriptor(nonReference: true, startOfPartition: false, partitionIndex: 3, pictureID: 0x55, longPictureID: false,
                                              tl0PictureIndex: 9, temporalLayerIndex: 2, layerSync: true, keyIndex: 17)
        var out = ByteBuffer()
        try descriptor.write(into: &out)
        #expect(out == hexBuffer("a3 f0 55 09 b1"))
        #expect(descriptor.encodedSize == 5)
        out.writeInteger(UInt8(0xAB))
        #expect(try VP8PayloadDescriptor(reading: &out) == descriptor)
    }

    @Test("a minimal descriptor is one octet")
    func minimal() throws {
        var payload = hexBuffer("10 00")
        let descriptor = try VP8PayloadDescriptor(reading: &payload)
        #expect(descriptor.pictureID == nil)
        #expect(descriptor.encodedSize == 1)
    }

    @Test("malformed descriptors are refused")
    func malformed() {
        for bytes in ["", "80", "90 80", "90 80 81", "90 40", "90 20", "90 80 81 23"] {
            expectError(RTPError.Code.truncated) {
                var payload = hexBuffer(bytes)
                _ = try VP8PayloadDescriptor(reading: &payload)
            }
        }
        expectError(RTPError.Code.invalidArgument) {
            var out = ByteBuffer()
            try VP8PayloadDescriptor(startOfPartition: true, pictureID: 200, longPictureID: false).write(into: &out)
        }
    }

    @Test("the packetizer keeps every packet within the MTU, balances sizes and marks the last (RFC 7741 §4.4)")
    func packetizer() throws {
        var packetizer = try VP8Packetizer(payloadType: 96, ssrc: 42, firstSequenceNumber: 65534, firstPictureID: 0x7FFF)
        let frame = ByteBuffer(bytes: (0..<5000).map { UInt8(truncatingIfNeeded: $0) })
        let packets = packetizer.packetize(frame: frame, timestamp: 3000)
        #expect(packets.count == 5)
        #expect(packets.map(\.sequenceNumber) == [65534, 65535, 0, 1, 2])
        #expect(packets.map(\.marker) == [false, false, false, false, true])
        var sizes: [Int] = []
        var joined = ByteBuffer()
        for (index, packet) in packets.enumerated() {
            let wire = try packet.serialized()
            #expect(wire.readableBytes <= VP8Packetizer.defaultMTU)
            var payload = packet.payload
            let descriptor = try VP8PayloadDescriptor(reading: &payload)
            #expect(descriptor.pictureID == 0x7FFF)
            #expect(descriptor.startOfPartition == (index == 0))
            sizes.append(payload.readableBytes)
            joined.writeBuffer(&payload)
        }
        #expect(joined == frame)
        #expect(sizes.max()! - sizes.min()! <= 1)
        // The picture ID wraps at 15 bits.
        let next = packetizer.packetize(frame: ByteBuffer(bytes: [1]), timestamp: 6000)
        var payload = next[0].payload
        #expect(try VP8PayloadDescriptor(reading: &payload).pictureID == 0)
        #expect(throws: RTPError.self) { _ = try VP8Packetizer(payloadType: 96, ssrc: 1, mtu: 20) }
    }

    @Test("the assembler rebuilds frames from reordered, duplicated packets and lists what is missing")
    func assemblerReorder() throws {
        var packetizer = try VP8Packetizer(payloadType: 96, ssrc: 1, mtu: 100)
        // A fake keyframe (P bit 0) and an inter frame (P bit 1), several packets each.
        let key = ByteBuffer(bytes: [0x00] + [UInt8](repeating: 0xAA, count: 250))
        let inter = ByteBuffer(bytes: [0x01] + [UInt8](repeating: 0xBB, count: 180))
        let first = packetizer.packetize(frame: key, timestamp: 0)
        let second = packetizer.packetize(frame: inter, timestamp: 3000)
        var assembler = VP8FrameAssembler()
        var frames: [VP8FrameAssembler.Frame] = []
        // Second frame first, one packet of the first frame held back, a duplicate.
        for packet in second + [first[0], first[2], first[2]] { frames += try assembler.insert(packet) }
        #expect(frames.isEmpty)
        #expect(assembler.needsKeyframe)
        #expect(assembler.missingSequenceNumbers == [first[1].sequenceNumber])
        frames += try assembler.insert(first[1])
        #expect(frames.count == 2)
        #expect(frames[0].data == key && frames[0].isKeyframe && !frames[0].followsGap)
        #expect(frames[1].data == inter && !frames[1].isKeyframe)
        #expect(frames[1].pictureID == 1)
        #expect(!assembler.needsKeyframe)
        // A late duplicate of an old packet yields nothing.
        #expect(try assembler.insert(first[1]).isEmpty)
    }

    @Test("a lost frame holds later frames back until a keyframe, or until the gap is skipped")
    func assemblerGap() throws {
        var packetizer = try VP8Packetizer(payloadType: 96, ssrc: 1, mtu: 100)
        func frame(_ key: Bool, _ fill: UInt8) -> ByteBuffer { ByteBuffer(bytes: [key ? 0x00 : 0x01] + [UInt8](repeating: fill, count: 150)) }
        let frames = [frame(true, 1), frame(false, 2), frame(false, 3), frame(false, 4), frame(true, 5)].enumerated().map {
            packetizer.packetize(frame: $0.element, timestamp: UInt32($0.offset * 3000))
        }
        var assembler = VP8FrameAssembler()
        #expect(try assembler.insert(frames[0][0]).isEmpty)
        #expect(try assembler.insert(frames[0][1]).count == 1)
        // Frame 1 is lost entirely; frames 2 and 3 wait.
        for packet in frames[2] + frames[3] { #expect(try assembler.insert(packet).isEmpty) }
        #expect(assembler.missingSequenceNumbers == frames[1].map(\.sequenceNumber))
        // The keyframe (as after a PLI) releases the stream, marked as following a gap.
        var out: [VP8FrameAssembler.Frame] = []
        for packet in frames[4] { out += try assembler.insert(packet) }
        #expect(out.count == 1)
        #expect(out[0].isKeyframe && out[0].followsGap)
        #expect(out[0].data == frame(true, 5))

        // Same loss, but the receiver gives up instead of waiting for a keyframe.
        var skipping = VP8FrameAssembler()
        for packet in frames[0] + frames[2] { _ = try skipping.insert(packet) }
        let skipped = skipping.skipGap()
        #expect(skipped.count == 1 && skipped[0].followsGap && skipped[0].timestamp == 6000)
        #expect(skipping.needsKeyframe)
    }
}
