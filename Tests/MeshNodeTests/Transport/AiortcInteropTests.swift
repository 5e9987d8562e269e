import Foundation
import ICE
import DTLSSRTP
import MeshNode
import RTP
import SDP
import Codecs
import NIOCore
import Synchronization
import Testing
import TestSupport

/// aiortc 1.16 (an independent WebRTC stack: aioice, OpenSSL DTLS via pyOpenSSL, libsrtp
/// via pylibsrtp, PyAV's Opus) as the remote peer, driven by `Tests/Interop/aiortc_peer.py`
/// over stdin/stdout. It gathers only on 127.0.0.2, we on 127.0.0.1: all loopback.
@Suite(
    "Interop with aiortc", .serialized, .timeLimit(.minutes(2)),
    .enabled(if: Tools.aiortc, "aiortc is not importable by python3: run `make test-deps` (pip install aiortc==1.16.0)"))
struct AiortcInteropTests {
    @Test("meshnode offers (DTLS server), aiortc answers: ICE, DTLS, SRTP and RTP both ways", arguments: [SRTPProfile.aes128CMHMACSHA1_80, .aeadAES128GCM])
    func meshnodeOffers(profile: SRTPProfile) async throws {
        try await runCall(meshnodeOffers: true, profile: profile)
    }

    @Test("aiortc offers (DTLS server), meshnode answers active (DTLS client): RTP both ways")
    func aiortcOffers() async throws {
        try await runCall(meshnodeOffers: false, profile: .aes128CMHMACSHA1_80)
    }

    func runCall(meshnodeOffers: Bool, profile: SRTPProfile) async throws {
        let peer = try AiortcProcess.start()
        defer { peer.terminate() }
        let certificate = try DTLSCertificate(commonName: "meshnode")
        let agent = try await ICEAgent(configuration: .init(
            role: meshnodeOffers ? .controlling : .controlled, localAddresses: ["127.0.0.1"], trickle: false))
        let ssrc: UInt32 = 0x0DDB_A11

        // aiortc neither trickles nor takes trickled candidates: gather everything first.
        let gathering = GatheringProbe(agent: agent)
        try await agent.gather()
        let candidates = try await withTimeout("our gathering") { try await gathering.candidates() }
        let credentials = try await agent.localCredentials()

        let remote: SessionDescription
        let role: DTLSRole
        if meshnodeOffers {
            let offer = Self.sdp(credentials: credentials, fingerprint: certificate.fingerprint, setup: .actpass, candidates: candidates,
                                 ssrc: ssrc, payloadType: 111, mid: "0")
            try peer.send(["type": "offer", "sdp": offer])
            let answer = try await withTimeout("aiortc's answer") { try await peer.next(type: "answer") }
            remote = try SessionDescription(parsing: try #require(answer["sdp"] as? String))
            role = try DTLSRole(local: .actpass, remote: try #require(Self.setup(of: remote)))
        } else {
            try peer.send(["type": "create-offer"])
            let offer = try await withTimeout("aiortc's offer") { try await peer.next(type: "offer") }
            remote = try SessionDescription(parsing: try #require(offer["sdp"] as? String))
            role = try DTLSRole(local: .active, remote: try #require(Self.setup(of: remote)))
            // Answer with the offerer's Opus payload type and mid (RFC 8829 §5.3.1).
            let offered = try #require(remote.media.first)
            let opus = try #require(offered.rtpMaps.first { $0.encoding.lowercased() == "opus" })
            let answer = Self.sdp(credentials: credentials, fingerprint: certificate.fingerprint, setup: .active, candidates: candidates,
                                  ssrc: ssrc, payloadType: opus.payloadType, mid: offered.mid ?? "0")
            try peer.send(["type": "answer", "sdp": answer])
        }
        #expect(role == (meshnodeOffers ? .server : .client))

        let media = try #require(remote.media.first)
        let attributes = remote.attributes + media.attributes
        let remoteCredentials = ICECredentials(
            ufrag: try #require(attributes.lazy.compactMap { if case .iceUsernameFragment(let v) = $0 { v } else { nil } }.first),
            password: try #require(attributes.lazy.compactMap { if case .icePassword(let v) = $0 { v } else { nil } }.first))
        let fingerprint = try #require(attributes.lazy.compactMap { if case .fingerprint(let f) = $0 { f } else { nil } }.first)
        let payloadType = UInt8(try #require(media.rtpMaps.first { $0.encoding.lowercased() == "opus" }).payloadType)

        let probe = try TransportPeer(name: "meshnode", agent: agent, certificate: certificate, configuration: .init(
            certificate: certificate, role: role, remoteFingerprint: fingerprint, profiles: [profile]))
        let transport = probe.transport
        gathering.stop()
        probe.start(trickleTo: nil)
        try await agent.setRemoteCredentials(remoteCredentials)
        for candidate in media.candidates where candidate.component == 1 {
            try await agent.addRemoteCandidate(sdp: "candidate:" + candidate.description)
        }
        try await agent.endOfRemoteCandidates()

        let negotiated = try await withTimeout("DTLS with aiortc") { try await transport.connected() }
        #expect(negotiated == profile)

        // 2 s of 20 ms Opus frames (a 440 Hz tone from our own encoder) to aiortc.
        let encoder = try OpusAudioEncoder()
        var sequence: UInt16 = 1
        for frame in 0..<100 {
            let pcm = (0..<960).map { i in Int16(8000 * sin(2 * Double.pi * 440 * Double(frame * 960 + i) / 48_000)) }
            let packet = RTPPacket(marker: frame == 0, payloadType: payloadType, sequenceNumber: sequence,
                                   timestamp: UInt32(frame * 960), ssrc: ssrc, payload: try encoder.encode(pcm))
            try transport.sendRTP(try packet.serialized())
            sequence &+= 1
            try await Task.sleep(for: .milliseconds(20))
        }
        try await probe.wait(for: "RTP and RTCP from aiortc") { $0.rtp.count >= 20 && !$0.rtcp.isEmpty }

        // SRTCP the other way: receiver reports on aiortc's stream with a loss figure aiortc
        // can only know by decrypting and parsing them (its remote-inbound-rtp stats). Sent
        // until aiortc's stats show it, and until it has decoded what we sent: the checks below
        // are on what aiortc saw, however long it took.
        let firstFromAiortc = try #require(probe.snapshot.rtp.first)
        let aiortcSSRC = try RTPPacket(parsing: firstFromAiortc).ssrc
        let report = RTCPReportBlock(ssrc: aiortcSSRC, fractionLost: 0, cumulativeLost: 7, extendedHighestSequenceNumber: 0,
                                     jitter: 0, lastSenderReport: 0, delaySinceLastSenderReport: 0)
        var seen: [String: any Sendable] = [:]
        try await waitUntil("aiortc to decode our audio and read our receiver report (last stats \(seen))", interval: .milliseconds(100)) {
            try transport.sendRTCP(try RTCPPacket.serializeCompound([.receiverReport(RTCPReceiverReport(ssrc: ssrc, reports: [report]))]))
            try peer.send(["type": "stats"])
            seen = try await peer.next(type: "stats")
            return seen["reportedLost"] as? Int == 7 && (seen["framesDecoded"] as? Int ?? 0) >= 50
        }

        try peer.send(["type": "stop"])
        let result = try await withTimeout("aiortc's result") { try await peer.next(type: "result") }
        print("aiortc interop (\(meshnodeOffers ? "meshnode offers" : "aiortc offers"), \(profile)): aiortc \(result), meshnode \(transport.statistics)")

        let received = probe.snapshot.rtp.compactMap { try? RTPPacket(parsing: $0) }
        #expect(received.count >= 20)
        #expect(received.allSatisfy { $0.payloadType == payloadType && $0.payload.readableBytes > 0 })
        #expect(Set(received.map(\.ssrc)).count == 1)
        #expect(probe.snapshot.rtcp.allSatisfy { (try? RTCPPacket.parseCompound($0)) != nil })
        #expect(transport.statistics.authenticationFailures == 0)
        #expect(result["dtlsState"] as? String == "connected")
        #expect(result["srtpProfile"] as? String == profile.openSSLNameForTests)
        #expect((result["packetsReceived"] as? Int ?? 0) >= 50, "aiortc received our RTP")
        #expect((result["framesDecoded"] as? Int ?? 0) >= 50, "aiortc decoded our Opus frames")
        #expect(result["reportedLost"] as? Int == 7, "aiortc decrypted and parsed our SRTCP receiver report")

        await probe.shutdown()
    }

    static func setup(of description: SessionDescription) -> SDPSetupRole? {
        (description.attributes + (description.media.first?.attributes ?? [])).lazy.compactMap {
            if case .setup(let role) = $0 { role } else { nil }
        }.first
    }

    /// A one-m-line JSEP description (BUNDLE, rtcp-mux, Opus/111) with every candidate.
    static func sdp(credentials: ICECredentials, fingerprint: SDPFingerprint, setup: SDPSetupRole,
                    candidates: [ICECandidate], ssrc: UInt32, payloadType: Int, mid: String) -> String {
        var lines = [
            "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
            "a=group:BUNDLE \(mid)", "a=msid-semantic: WMS meshnode",
            "m=audio 9 UDP/TLS/RTP/SAVPF \(payloadType)", "c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
            "a=ice-ufrag:\(credentials.ufrag)", "a=ice-pwd:\(credentials.password)",
            "a=fingerprint:\(fingerprint)", "a=setup:\(setup.rawValue)", "a=mid:\(mid)", "a=sendrecv",
            "a=msid:meshnode audio0", "a=rtcp-mux", "a=rtpmap:\(payloadType) opus/48000/2",
            "a=fmtp:\(payloadType) minptime=10;useinbandfec=1", "a=ssrc:\(ssrc) cname:meshnode",
        ]
        lines += candidates.map { "a=\($0.sdp)" }
        lines.append("a=end-of-candidates")
        return lines.joined(separator: "\r\n") + "\r\n"
    }
}

extension SRTPProfile {
    var openSSLNameForTests: String {
        switch self {
        case .aes128CMHMACSHA1_80: "SRTP_AES128_CM_SHA1_80"
        case .aeadAES128GCM: "SRTP_AEAD_AES_128_GCM"
        }
    }
}

/// Collects an agent's local candidates until gathering is done, before a transport takes
/// over its events.
final class GatheringProbe: Sendable {
    private let state = Mutex<(candidates: [ICECandidate], done: Bool)>(([], false))
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    init(agent: ICEAgent) {
        let task = Task { [self] in
            for await event in agent.events {
                switch event {
                case .localCandidate(let candidate): state.withLock { $0.candidates.append(candidate) }
                case .gatheringDone:
                    state.withLock { $0.done = true }
                    return
                default: break
                }
            }
        }
        self.task.withLock { $0 = task }
    }

    func candidates() async throws -> [ICECandidate] {
        while true {
            let (candidates, done) = state.withLock { ($0.candidates, $0.done) }
            if done { return candidates }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func stop() { task.withLock { $0?.cancel() } }
}

/// `python3 Tests/Interop/aiortc_peer.py`, one JSON object per line each way.
final class AiortcProcess: Sendable {
    private let process: Process
    private let input: FileHandle
    private let lines = Mutex<[String]>([])
    private let errors = Mutex("")

    private init(process: Process, input: FileHandle) {
        self.process = process
        self.input = input
    }

    static func start() throws -> AiortcProcess {
        let script = TestFiles.url("Tests/Interop/aiortc_peer.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let peer = AiortcProcess(process: process, input: stdin.fileHandleForWriting)
        let out = stdout.fileHandleForReading
        let err = stderr.fileHandleForReading
        // Blocking reads on threads of their own: the pipes close when the process exits.
        Thread.detachNewThread { [peer] in
            var pending = Data()
            while true {
                let chunk = out.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    peer.lines.withLock { $0.append(line) }
                }
            }
        }
        Thread.detachNewThread { [peer] in
            while true {
                let chunk = err.availableData
                if chunk.isEmpty { break }
                peer.errors.withLock { $0 += String(decoding: chunk, as: UTF8.self) }
            }
        }
        return peer
    }

    func send(_ message: [String: String]) throws {
        let data = try JSONSerialization.data(withJSONObject: message)
        try input.write(contentsOf: data + Data("\n".utf8))
    }

    /// The next line of type `type` (others are skipped); fails if the script exits or
    /// reports an error.
    func next(type: String) async throws -> [String: any Sendable] {
        while true {
            let line = lines.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            if let line {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
                if object["type"] as? String == "error" { throw TestFailure("aiortc: \(line)\n\(stderrTail)") }
                if object["type"] as? String == type {
                    var result: [String: any Sendable] = [:]
                    for (key, value) in object {
                        switch value {
                        case let number as NSNumber where !(value is String): result[key] = number.intValue
                        case let text as String: result[key] = text
                        default: result[key] = "\(value)"
                        }
                    }
                    return result
                }
                continue
            }
            if !process.isRunning && lines.withLock({ $0.isEmpty }) {
                throw TestFailure("aiortc_peer.py exited (\(process.terminationStatus)) before sending '\(type)':\n\(stderrTail)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    var stderrTail: String { String(errors.withLock { $0 }.suffix(2_000)) }

    func terminate() {
        if process.isRunning { process.terminate() }
    }
}
