/// A media section: an `m=` line and the lines after it up to the next `m=` (RFC 8866 §5.14).
public struct MediaDescription: Hashable, Sendable {
    /// `audio`, `video`, `application`, …
    public var kind: String
    /// The transport port; 9 in JSEP offers (RFC 8829 §5.2.1), 0 for a rejected section.
    public var port: Int
    /// The `/<number of ports>` suffix, if any.
    public var numberOfPorts: Int?
    /// The transport protocol, `UDP/TLS/RTP/SAVPF` for WebRTC media (RFC 8829 §5.1.2).
    public var proto: String
    /// The formats: RTP payload types for RTP protocols, as text.
    public var formats: [String]
    /// `i=` (RFC 8866 §5.4).
    public var information: String?
    /// `c=` lines (RFC 8866 §5.7).
    public var connections: [SessionDescription.ConnectionData]
    /// `b=` lines (RFC 8866 §5.8).
    public var bandwidths: [SessionDescription.Bandwidth]
    /// `k=` (obsolete), kept as text.
    public var encryptionKey: String?
    /// Media-level `a=` lines in order.
    public var attributes: [SDPAttribute]

    /// Creates a media section.
    public init(kind: String, port: Int = 9, numberOfPorts: Int? = nil, proto: String = "UDP/TLS/RTP/SAVPF", formats: [String],
                information: String? = nil, connections: [SessionDescription.ConnectionData] = [],
                bandwidths: [SessionDescription.Bandwidth] = [], encryptionKey: String? = nil, attributes: [SDPAttribute] = []) {
        self.kind = kind
        self.port = port
        self.numberOfPorts = numberOfPorts
        self.proto = proto
        self.formats = formats
        self.information = information
        self.connections = connections
        self.bandwidths = bandwidths
        self.encryptionKey = encryptionKey
        self.attributes = attributes
    }

    /// `a=mid` (RFC 9143 §9).
    public var mid: String? {
        for case .mid(let mid) in attributes { return mid }
        return nil
    }

    /// The direction attribute (RFC 8866 §6.7); `sendrecv` when absent.
    public var direction: SDPDirection {
        for case .direction(let direction) in attributes { return direction }
        return .sendrecv
    }

    /// `a=rtpmap` lines (RFC 8866 §6.6).
    public var rtpMaps: [SDPRTPMap] {
        attributes.compactMap { if case .rtpmap(let map) = $0 { map } else { nil } }
    }

    /// The `a=fmtp` parameters of a payload type (RFC 8866 §6.15).
    public func formatParameters(for payloadType: Int) -> SDPFormatParameters? {
        for case .fmtp(let fmtp) in attributes where fmtp.payloadType == payloadType { return fmtp }
        return nil
    }

    /// The `a=rtcp-fb` values for a payload type, including those given for `*` (RFC 4585 §4.2).
    public func feedback(for payloadType: Int) -> [SDPRTCPFeedback] {
        attributes.compactMap {
            if case .rtcpFeedback(let feedback) = $0, feedback.payloadType == nil || feedback.payloadType == payloadType { feedback } else { nil }
        }
    }

    /// `a=extmap` lines (RFC 8285 §8).
    public var extensionMaps: [SDPExtensionMap] {
        attributes.compactMap { if case .extmap(let map) = $0 { map } else { nil } }
    }

    /// `a=candidate` lines (RFC 8839 §5.1).
    public var candidates: [SDPCandidate] {
        attributes.compactMap { if case .candidate(let candidate) = $0 { candidate } else { nil } }
    }

    /// The SSRCs announced with `a=ssrc` (RFC 5576 §4.1), in order of first appearance.
    public var ssrcs: [UInt32] {
        var seen: [UInt32] = []
        for case .ssrc(let ssrc) in attributes where !seen.contains(ssrc.ssrc) { seen.append(ssrc.ssrc) }
        return seen
    }

    /// Whether `a=rtcp-mux` is present (RFC 8035 §5.1).
    public var isRTCPMuxed: Bool { attributes.contains(.rtcpMux) }

    /// Whether `a=bundle-only` is present (RFC 8843 §6): an offerer that bundles for certain
    /// (JSEP's `max-bundle`, as Firefox does) gives every section but the first port 0 and this
    /// attribute, so the section still carries media inside the BUNDLE group.
    public var isBundleOnly: Bool { attributes.contains(.other(name: "bundle-only", value: nil)) }
}
