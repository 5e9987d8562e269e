import NIOCore

@testable import DTLSSRTP

/// Inputs that reach the transport from the network are fed to a fresh DTLS server and fresh
/// SRTP inbound sessions per input; the certificate is made once.
private let certificate = try! DTLSCertificate(commonName: "fuzz")
private let peerFingerprint = certificate.fingerprint
private let srtpKey = [UInt8](repeating: 7, count: 30)

/// libFuzzer entry: everything that arrives on the bundled ICE component. The RFC 7983
/// demultiplexer must classify any bytes by their first byte alone, and every path it leads
/// to (DTLS record packing and OpenSSL's DTLS server, libsrtp2 unprotect, the RTP and RTCP
/// parsers) must reject bad bytes without trapping.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDemux(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: size))
    let kind = PacketDemultiplexer.classify(bytes)
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    precondition(PacketDemultiplexer.classify(raw) == kind, "ByteBuffer and raw-bytes classification disagree")
    switch kind {
    case .stun: precondition(size >= 1 && data[0] <= 3)
    case .zrtp: precondition((16...19).contains(data[0]))
    case .turnChannel: precondition((64...79).contains(data[0]))
    case .unknown: precondition(size < 2 || !((0...3).contains(data[0]) || (16...79).contains(data[0]) || (128...191).contains(data[0])))
    case .dtls:
        precondition((20...63).contains(data[0]))
        let datagrams = DTLSRecordPacker.datagrams(from: bytes, mtu: 1200)
        precondition(datagrams.reduce(0) { $0 + $1.readableBytes } == size, "the record packer lost or invented bytes")
        var rejoined = ByteBuffer()
        for var datagram in datagrams { rejoined.writeBuffer(&datagram) }
        precondition(rejoined == bytes, "the record packer reordered bytes")
        if let server = try? DTLSConnection(certificate: certificate, role: .server, remoteFingerprint: peerFingerprint, profiles: [.aes128CMHMACSHA1_80]) {
            let output = server.receive(bytes)
            precondition(!output.handshakeCompleted, "a handshake completed from one datagram")
            for datagram in output.datagrams { precondition(datagram.readableBytes > 0) }
        }
    case .srtp, .srtcp:
        precondition((128...191).contains(data[0]) && size >= 2)
        precondition((kind == .srtcp) == (192...223).contains(data[1]))
        // The RTP/RTCP header parsers behind SRTP are fuzz-rtp's.
        for profile in SRTPProfile.allCases {
            guard let session = try? SRTPSession(profile: profile, keyAndSalt: Array(srtpKey.prefix(profile.masterKeyLength + profile.masterSaltLength)), direction: .inbound) else { continue }
            // Random bytes carry no valid tag: authentication must fail, never succeed.
            let result = kind == .srtp ? try? session.unprotectRTP(bytes) : try? session.unprotectRTCP(bytes)
            precondition(result == nil, "a packet of random bytes authenticated")
        }
    }
    return 0
}
