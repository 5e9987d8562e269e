import Foundation
import ICE
import DTLSSRTP
import MeshNode
import RTP
import SDP
import NIOCore
import Testing
import TestSupport
import STUN

/// Figures for `bench/transport/run` (`make bench`): ICE connect and DTLS handshake times on
/// loopback, and SRTP through our Swift ``SRTPSession`` wrapper. Skipped unless
/// MESHNODE_BENCH=1; each figure is also checked for correctness (every call connects, every
/// packet round-trips), so a broken transport fails the bench.
@Suite(
    "Transport benchmarks", .serialized, .timeLimit(.minutes(5)),
    .enabled(if: ProcessInfo.processInfo.environment["MESHNODE_BENCH"] == "1", "benchmarks run only from bench/transport/run (MESHNODE_BENCH=1)"))
struct TransportBenchmarks {
    static var iterations: Int { Int(ProcessInfo.processInfo.environment["MESHNODE_BENCH_CALLS"] ?? "") ?? 15 }

    static func emit(_ fields: [String: any Sendable]) {
        let data = try! JSONSerialization.data(withJSONObject: fields.mapValues { $0 as Any }, options: [.sortedKeys])
        print("BENCH " + String(decoding: data, as: UTF8.self))
    }

    static func summary(_ values: [Double]) -> [String: Double] {
        let sorted = values.sorted()
        return ["min": sorted.first ?? 0, "median": sorted[sorted.count / 2], "max": sorted.last ?? 0]
    }

    @Test("ICE connect and DTLS handshake times over 127.0.0.1, both DTLS roles")
    func callSetup() async throws {
        for setup in [SDPSetupRole.active, .passive] {
            var ice: [Double] = []
            var handshake: [Double] = []
            var total: [Double] = []
            for _ in 0..<Self.iterations {
                let pair = try await TransportPair.make(answererSetup: setup)
                let start = ContinuousClock.now
                try await pair.start()
                _ = try await withTimeout("A connected") { try await pair.a.transport.connected() }
                _ = try await withTimeout("B connected") { try await pair.b.transport.connected() }
                let a = pair.a.snapshot
                let b = pair.b.snapshot
                let iceDone = try #require([a.iceConnectedAt, b.iceConnectedAt].compactMap { $0 }.max())
                let dtlsDone = try #require([a.dtlsConnectedAt, b.dtlsConnectedAt].compactMap { $0 }.max())
                let client = setup == .active ? pair.b : pair.a
                ice.append((iceDone - start).inMilliseconds)
                handshake.append(try #require(client.transport.statistics.handshakeDuration).inMilliseconds)
                total.append((dtlsDone - start).inMilliseconds)
                try await deliverRTP("bench", ssrc: 1, from: pair.a, to: pair.b)
                await pair.shutdown()
            }
            Self.emit(["figure": "call-setup", "dtlsClient": setup == .active ? "answerer" : "offerer", "calls": Self.iterations,
                       "iceConnectMs": Self.summary(ice), "dtlsHandshakeMs": Self.summary(handshake), "iceAndDtlsMs": Self.summary(total)])
        }
    }

    @Test("SRTP protect+unprotect through the Swift wrapper (libsrtp2 underneath)", arguments: SRTPProfile.allCases)
    func srtpWrapper(profile: SRTPProfile) throws {
        let key = (0..<(profile.masterKeyLength + profile.masterSaltLength)).map { UInt8(truncatingIfNeeded: $0 * 13 + 5) }
        for size in [160, 1200] {
            let outbound = try SRTPSession(profile: profile, keyAndSalt: key, direction: .outbound)
            let inbound = try SRTPSession(profile: profile, keyAndSalt: key, direction: .inbound)
            let payload = ByteBuffer(bytes: (0..<(size - 12)).map { UInt8(truncatingIfNeeded: $0 * 7) })
            var clear = try RTPPacket(payloadType: 111, sequenceNumber: 1, timestamp: 0, ssrc: 1, payload: payload).serialized()
            var packets = 0
            let clock = ContinuousClock()
            let cpuStart = clock_gettime_thread()
            let start = clock.now
            while clock.now - start < .seconds(1) {
                for _ in 0..<500 {
                    let sequence = UInt16(packets % 65_000 + 1)
                    let ssrc = UInt32(packets / 65_000 + 1)
                    // Only the sequence number and SSRC change: no RTP serialisation is timed.
                    clear.setInteger(sequence, at: clear.readerIndex + 2)
                    clear.setInteger(ssrc, at: clear.readerIndex + 8)
                    let back = try inbound.unprotectRTP(try outbound.protectRTP(clear))
                    if packets % 10_000 == 0 { #expect(back == clear) }
                    packets += 1
                }
            }
            let cpu = clock_gettime_thread() - cpuStart
            Self.emit(["figure": "srtp-swift", "profile": profile.rawValue, "size": size, "packets": packets,
                       "cpuSeconds": cpu, "pps": Double(packets) / cpu])
        }
    }
}

/// CPU time of the calling thread, in seconds.
func clock_gettime_thread() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}
