import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing
@testable import Signaling

/// The text frames a signaling connection sends (SignalingConnectionHandler): each is one
/// buffer, its header in front of its payload, written below NIOWebSocket's encoder — which
/// wrote the header as a buffer of its own before every payload (two pipeline writes and two
/// iovecs per frame, issue 17) — and a standard decoder reads it back as the same text.
@Suite(.timeLimit(.minutes(1))) struct ConnectionFrameTests {
    @Test("RFC 6455 §5.2: a text frame goes out as one unmasked buffer, in the 7-bit, 16-bit and 64-bit length forms")
    func textFrameIsOneBuffer() async throws {
        let fixture = try await HubFixture()
        let channel = NIOAsyncTestingChannel()
        let hub = fixture.hub
        try await channel.testingEventLoop.executeInContext {
            let handler = SignalingConnectionHandler(role: .serve(hub: hub, drain: ConnectionDrain(), outboxes: LoopOutboxes(),
                                                                  hostHint: nil, remoteIP: nil))
            try channel.pipeline.syncOperations.addHandler(WebSocketFrameEncoder())
            try channel.pipeline.syncOperations.addHandler(handler)
        }
        // The hub's first frame, its login challenge, comes the same way: one buffer, one frame.
        let challenge = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
        #expect(try Self.decode(challenge).contains(#""type":"challenge""#))
        #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil, "one buffer per frame")
        // 125 and under: the length in the second byte; up to 65,535: 126 and 16 bits; above: 127 and 64 bits.
        for (text, header) in [("hi", 2), (String(repeating: "é", count: 100), 4), (String(repeating: "x", count: 70_000), 10)] {
            try await channel.testingEventLoop.executeInContext {
                let handler = try channel.pipeline.syncOperations.handler(type: SignalingConnectionHandler.self)
                if handler.write(text: text) { handler.flushWritten() }
            }
            let sent = try #require(try await channel.readOutbound(as: ByteBuffer.self))
            #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil, "one buffer per frame")
            #expect(sent.readableBytes == header + text.utf8.count)
            #expect(try Self.decode(sent) == text)
        }
        _ = try await channel.finish()
        await fixture.close()
    }

    /// The text of the one final, unmasked text frame `bytes` holds, read by NIOWebSocket's decoder.
    static func decode(_ bytes: ByteBuffer) throws -> String {
        let decoder = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)))
        defer { _ = try? decoder.finish() }
        try decoder.writeInbound(bytes)
        let frame = try #require(try decoder.readInbound(as: WebSocketFrame.self))
        #expect(frame.fin && frame.opcode == .text && frame.maskKey == nil)
        #expect(try decoder.readInbound(as: WebSocketFrame.self) == nil, "nothing after the frame")
        return String(buffer: frame.data)
    }
}
