import NIOCore
import Testing
@testable import Media

/// A peer that floods the call with packets (they passed SRTP, so they are the peer's) faster than
/// the media thread drains them: the queue stops at its bound instead of growing.
@Suite("Media engine inbound queue")
struct MediaEngineInboundTests {
    @Test("a flood beyond the bound is dropped, the queue keeps its limit")
    func floodIsBounded() {
        // Not started: nothing drains, as when the media thread is busy encoding.
        let engine = MediaEngine(configuration: .init(streams: [], video: nil, audio: nil, audioSSRC: 1, videoSSRC: 2, rtxSSRC: 3, cname: "t")) { _ in }
        let packet = ByteBuffer(bytes: [0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1])
        for _ in 0..<(MediaEngine.inboundLimit + 1_000) { engine.receive(rtp: packet) }
        #expect(engine.inbound.withLock { $0.count } == MediaEngine.inboundLimit)
        // The excess is counted, for the call's report (`receiveQueueDrops.engine`).
        #expect(engine.statistics.inboundQueueDrops == 1_000)
    }
}
