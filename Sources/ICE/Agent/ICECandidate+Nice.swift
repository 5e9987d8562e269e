internal import CNice
import STUN

// Conversions between ICECandidate and libnice's NiceCandidate. Only used on the GLib thread.

extension ICECandidate {
    /// Reads a candidate libnice produced (a local candidate or a selected-pair member).
    init(nice candidate: UnsafePointer<NiceCandidate>) {
        let c = candidate.pointee
        let kind: Kind
        switch c.type {
        case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE: kind = .serverReflexive
        case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE: kind = .peerReflexive
        case NICE_CANDIDATE_TYPE_RELAYED: kind = .relay
        default: kind = .host
        }
        let transport: Transport
        let tcpType: TCPType?
        switch c.transport {
        case NICE_CANDIDATE_TRANSPORT_TCP_ACTIVE: (transport, tcpType) = (.tcp, .active)
        case NICE_CANDIDATE_TRANSPORT_TCP_PASSIVE: (transport, tcpType) = (.tcp, .passive)
        case NICE_CANDIDATE_TRANSPORT_TCP_SO: (transport, tcpType) = (.tcp, .so)
        default: (transport, tcpType) = (.udp, nil)
        }
        let foundation = withUnsafeBytes(of: c.foundation) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        var (address, port) = NiceAddressText.split(c.addr) ?? ("0.0.0.0", 0)
        // RFC 6544 §4.5: an active TCP candidate is signalled with port 9; libnice has 0.
        if tcpType == .active && port == 0 { port = 9 }
        var relatedAddress: String?
        var relatedPort: UInt16?
        if kind != .host, let (raddr, rport) = NiceAddressText.split(c.base_addr) {
            relatedAddress = raddr
            relatedPort = rport
        }
        self.init(
            foundation: foundation, component: Int(c.component_id), transport: transport,
            priority: c.priority, address: address, port: port, kind: kind,
            relatedAddress: relatedAddress, relatedPort: relatedPort, tcpType: tcpType
        )
    }

    /// Builds a `NiceCandidate` for `nice_agent_set_remote_candidates`; the caller frees it
    /// with `nice_candidate_free`.
    func makeNiceCandidate(streamID: UInt32) throws -> UnsafeMutablePointer<NiceCandidate> {
        if address.hasSuffix(".local") || address.hasSuffix(".local.") {
            throw ICEError(.invalidCandidate, "candidate address '\(address)' is an mDNS name; resolving mDNS candidates is not supported")
        }
        let type: NiceCandidateType
        switch kind {
        case .host: type = NICE_CANDIDATE_TYPE_HOST
        case .serverReflexive: type = NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE
        case .peerReflexive: type = NICE_CANDIDATE_TYPE_PEER_REFLEXIVE
        case .relay: type = NICE_CANDIDATE_TYPE_RELAYED
        }
        let candidate = nice_candidate_new(type)!
        switch (transport, tcpType) {
        case (.udp, _): candidate.pointee.transport = NICE_CANDIDATE_TRANSPORT_UDP
        case (.tcp, .active?): candidate.pointee.transport = NICE_CANDIDATE_TRANSPORT_TCP_ACTIVE
        case (.tcp, .passive?): candidate.pointee.transport = NICE_CANDIDATE_TRANSPORT_TCP_PASSIVE
        case (.tcp, .so?), (.tcp, nil): candidate.pointee.transport = NICE_CANDIDATE_TRANSPORT_TCP_SO
        }
        guard nice_address_set_from_string(&candidate.pointee.addr, address) != 0 else {
            nice_candidate_free(candidate)
            throw ICEError(.invalidCandidate, "candidate address '\(address)' is not an IPv4 or IPv6 literal")
        }
        nice_address_set_port(&candidate.pointee.addr, UInt32(port))
        if let relatedAddress, nice_address_set_from_string(&candidate.pointee.base_addr, relatedAddress) != 0 {
            nice_address_set_port(&candidate.pointee.base_addr, UInt32(relatedPort ?? 0))
        }
        candidate.pointee.priority = priority
        candidate.pointee.stream_id = streamID
        candidate.pointee.component_id = UInt32(component)
        withUnsafeMutableBytes(of: &candidate.pointee.foundation) { buffer in
            let bytes = Array(foundation.utf8.prefix(buffer.count - 1))
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        return candidate
    }
}

/// Text form of a `NiceAddress`.
enum NiceAddressText {
    /// The IP literal and port of a valid address, `nil` for an unset one.
    static func split(_ address: NiceAddress) -> (String, UInt16)? {
        var address = address
        guard nice_address_is_valid(&address) != 0 else { return nil }
        // NICE_ADDRESS_STRING_LEN is INET6_ADDRSTRLEN (46).
        var text = [CChar](repeating: 0, count: 64)
        nice_address_to_string(&address, &text)
        let ip = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return (ip, UInt16(truncatingIfNeeded: nice_address_get_port(&address)))
    }

    /// Whether `text` is an IPv4 or IPv6 literal libnice accepts.
    static func isIPLiteral(_ text: String) -> Bool {
        var address = NiceAddress()
        nice_address_init(&address)
        return nice_address_set_from_string(&address, text) != 0
    }
}
