import ICE
import Testing

/// RFC 8839 §5.1 candidate attribute: parsing and formatting.
@Suite("ICE candidate SDP form")
struct AgentCandidateSDPTests {
    @Test("RFC 8839 §5.1 host and srflx examples parse and format back")
    func rfcExamples() throws {
        let host = try ICECandidate(sdp: "a=candidate:1 1 UDP 2130706431 203.0.113.141 8998 typ host")
        #expect(host == ICECandidate(foundation: "1", priority: 2_130_706_431, address: "203.0.113.141", port: 8998, kind: .host))
        #expect(host.sdpAttribute == "a=candidate:1 1 UDP 2130706431 203.0.113.141 8998 typ host")

        let srflx = try ICECandidate(sdp: "candidate:2 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr 10.0.1.1 rport 8998\r\n")
        #expect(srflx.kind == .serverReflexive)
        #expect(srflx.relatedAddress == "10.0.1.1" && srflx.relatedPort == 8998)
        #expect(srflx.sdp == "candidate:2 1 UDP 1694498815 192.0.2.3 45664 typ srflx raddr 10.0.1.1 rport 8998")
    }

    @Test("a browser candidate with lowercase transport and extensions round-trips")
    func browserCandidate() throws {
        let line = "candidate:842163049 1 udp 1677729535 198.51.100.7 46154 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag EsAw network-cost 999"
        let candidate = try ICECandidate(sdp: line)
        #expect(candidate.transport == .udp)
        #expect(candidate.extensions == [.init(name: "generation", value: "0"), .init(name: "ufrag", value: "EsAw"), .init(name: "network-cost", value: "999")])
        #expect(try ICECandidate(sdp: candidate.sdp) == candidate)
    }

    @Test("RFC 6544 TCP candidates carry a tcptype; IPv6 and relay parse")
    func tcpIPv6Relay() throws {
        let tcp = try ICECandidate(sdp: "candidate:3 1 TCP 2128609279 10.0.1.1 9 typ host tcptype active")
        #expect(tcp.transport == .tcp && tcp.tcpType == .active)
        #expect(tcp.sdp == "candidate:3 1 TCP 2128609279 10.0.1.1 9 typ host tcptype active")
        let relay = try ICECandidate(sdp: "candidate:4 1 UDP 16777215 2001:db8::1 3478 typ relay raddr 2001:db8::2 rport 5000")
        #expect(relay.kind == .relay && relay.address == "2001:db8::1")
        let prflx = try ICECandidate(sdp: "candidate:a+b/C 1 UDP 1845501695 192.0.2.9 5000 typ prflx raddr 192.0.2.1 rport 6000")
        #expect(prflx.kind == .peerReflexive && prflx.foundation == "a+b/C")
    }

    @Test("malformed candidates are rejected with the field named", arguments: [
        ("candidate:1 1 UDP 2130706431 203.0.113.141 8998 type host", "typ"),
        ("candidate:1 1 UDP 2130706431 203.0.113.141 70000 typ host", "port"),
        ("candidate:1 1 UDP 4294967296 203.0.113.141 8998 typ host", "priority"),
        ("candidate:1 0 UDP 1 203.0.113.141 8998 typ host", "component"),
        ("candidate:1 1 SCTP 1 203.0.113.141 8998 typ host", "transport"),
        ("candidate:1 1 UDP 1 203.0.113.141 8998 typ relayed", "candidate type"),
        ("candidate:\(String(repeating: "f", count: 33)) 1 UDP 1 192.0.2.1 1 typ host", "foundation"),
        ("candidate:f-1 1 UDP 1 192.0.2.1 1 typ host", "foundation"),
        ("candidate:1 1 TCP 1 192.0.2.1 9 typ host", "tcptype"),
        ("candidate:1 1 UDP 1 192.0.2.1 1 typ host generation", "no value"),
        ("candidate:1 1 UDP 1 192.0.2.1 1 typ srflx raddr 10.0.0.1 rport x", "rport"),
        ("a=ice-ufrag:abcd", "candidate:"),
        ("candidate:1 1 UDP 1 192.0.2.1", "fields"),
    ])
    func malformed(line: String, field: String) {
        #expect {
            try ICECandidate(sdp: line)
        } throws: { error in
            guard let error = error as? ICEError else { return false }
            return error.code == .invalidCandidate && error.reason.contains(field)
        }
    }
}
