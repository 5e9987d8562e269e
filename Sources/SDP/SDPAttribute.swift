/// One `a=` line (RFC 8866 §5.13), decoded for the attributes JSEP uses (RFC 8829 §5.2) and kept as
/// text for the rest.
public enum SDPAttribute: Hashable, Sendable {
    /// `a=group:<semantics> <mid>…` (RFC 5888 §5), e.g. BUNDLE (RFC 9143).
    case group(SDPGroup)
    /// `a=mid:<id>` (RFC 5888 §4, RFC 9143 §9).
    case mid(String)
    /// `a=msid:<stream id> [<track id>]` (RFC 8830 §2).
    case msid(SDPMediaStreamID)
    /// `a=rtcp-mux` (RFC 8035 §5.1, RFC 5761 §5.1.1).
    case rtcpMux
    /// `a=rtcp-rsize` (RFC 5506 §5).
    case rtcpReducedSize
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly`, `a=inactive` (RFC 8866 §6.7).
    case direction(SDPDirection)
    /// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]` (RFC 8866 §6.6).
    case rtpmap(SDPRTPMap)
    /// `a=fmtp:<pt> <parameters>` (RFC 8866 §6.15).
    case fmtp(SDPFormatParameters)
    /// `a=rtcp-fb:<pt|*> <type> [<parameter>]` (RFC 4585 §4.2).
    case rtcpFeedback(SDPRTCPFeedback)
    /// `a=extmap:<id>[/<direction>] <uri> [<attributes>]` (RFC 8285 §8).
    case extmap(SDPExtensionMap)
    /// `a=ssrc:<ssrc> <attribute>[:<value>]` (RFC 5576 §4.1).
    case ssrc(SDPSourceAttribute)
    /// `a=ssrc-group:<semantics> <ssrc>…` (RFC 5576 §4.2).
    case ssrcGroup(SDPSourceGroup)
    /// `a=setup:<role>` (RFC 4145 §4, RFC 8842 §5.1).
    case setup(SDPSetupRole)
    /// `a=fingerprint:<hash function> <hex pairs>` (RFC 8122 §5).
    case fingerprint(SDPFingerprint)
    /// `a=ice-ufrag:<ufrag>` (RFC 8839 §5.4).
    case iceUsernameFragment(String)
    /// `a=ice-pwd:<password>` (RFC 8839 §5.4).
    case icePassword(String)
    /// `a=ice-options:<option>…` (RFC 8839 §5.6), e.g. `trickle`.
    case iceOptions([String])
    /// `a=candidate:…` (RFC 8839 §5.1).
    case candidate(SDPCandidate)
    /// `a=end-of-candidates` (RFC 8840 §8.2).
    case endOfCandidates
    /// `a=rid:<rid-id> send|recv [<restrictions>]` (RFC 8851 §10).
    case rid(SDPRestrictionIdentifier)
    /// `a=simulcast:send|recv <streams> …` (RFC 8853 §5.1).
    case simulcast(SDPSimulcast)
    /// Any other attribute: its name and, for value attributes, the text after the first colon.
    case other(name: String, value: String?)

    /// Parses the text after `a=`.
    ///
    /// - Throws: ``SDPError`` `.sdpSyntax` when a known attribute's value does not follow its grammar.
    public init(parsing text: Substring) throws(SDPError) {
        let name: Substring
        let value: Substring?
        if let colon = text.firstIndex(of: ":") {
            name = text[..<colon]
            value = text[text.index(after: colon)...]
        } else {
            name = text
            value = nil
        }
        guard !name.isEmpty, name.allSatisfy(SDPToken.isTokenCharacter) else {
            throw SDPError(.sdpSyntax, "attribute name '\(name)' is not a token (RFC 8866 §9)")
        }
        switch (name, value) {
        case ("group", let value?): self = .group(try SDPGroup(parsing: value))
        case ("mid", let value?): self = .mid(try SDPToken.single(value, in: "a=mid"))
        case ("msid", let value?): self = .msid(try SDPMediaStreamID(parsing: value))
        case ("rtcp-mux", nil): self = .rtcpMux
        case ("rtcp-rsize", nil): self = .rtcpReducedSize
        case ("sendrecv", nil): self = .direction(.sendrecv)
        case ("sendonly", nil): self = .direction(.sendonly)
        case ("recvonly", nil): self = .direction(.recvonly)
        case ("inactive", nil): self = .direction(.inactive)
        case ("rtpmap", let value?): self = .rtpmap(try SDPRTPMap(parsing: value))
        case ("fmtp", let value?): self = .fmtp(try SDPFormatParameters(parsing: value))
        case ("rtcp-fb", let value?): self = .rtcpFeedback(try SDPRTCPFeedback(parsing: value))
        case ("extmap", let value?): self = .extmap(try SDPExtensionMap(parsing: value))
        case ("ssrc", let value?): self = .ssrc(try SDPSourceAttribute(parsing: value))
        case ("ssrc-group", let value?): self = .ssrcGroup(try SDPSourceGroup(parsing: value))
        case ("setup", let value?):
            guard let role = SDPSetupRole(rawValue: String(value)) else {
                throw SDPError(.sdpSyntax, "a=setup:\(value) is not active, passive, actpass or holdconn (RFC 4145 §4)")
            }
            self = .setup(role)
        case ("fingerprint", let value?): self = .fingerprint(try SDPFingerprint(parsing: value))
        case ("ice-ufrag", let value?): self = .iceUsernameFragment(try SDPToken.single(value, in: "a=ice-ufrag"))
        case ("ice-pwd", let value?): self = .icePassword(try SDPToken.single(value, in: "a=ice-pwd"))
        case ("ice-options", let value?): self = .iceOptions(try SDPToken.words(value, in: "a=ice-options"))
        case ("candidate", let value?): self = .candidate(try SDPCandidate(parsing: value))
        case ("end-of-candidates", nil): self = .endOfCandidates
        case ("rid", let value?): self = .rid(try SDPRestrictionIdentifier(parsing: value))
        case ("simulcast", let value?): self = .simulcast(try SDPSimulcast(parsing: value))
        case ("rtcp-mux", _?), ("rtcp-rsize", _?), ("sendrecv", _?), ("sendonly", _?), ("recvonly", _?), ("inactive", _?), ("end-of-candidates", _?):
            throw SDPError(.sdpSyntax, "a=\(name) is a property attribute and takes no value")
        case ("group", nil), ("mid", nil), ("msid", nil), ("rtpmap", nil), ("fmtp", nil), ("rtcp-fb", nil), ("extmap", nil),
             ("ssrc", nil), ("ssrc-group", nil), ("setup", nil), ("fingerprint", nil), ("ice-ufrag", nil), ("ice-pwd", nil),
             ("ice-options", nil), ("candidate", nil), ("rid", nil), ("simulcast", nil):
            throw SDPError(.sdpSyntax, "a=\(name) needs a value")
        default:
            self = .other(name: String(name), value: value.map(String.init))
        }
    }

    /// The text after `a=`.
    public var text: String {
        switch self {
        case .group(let group): "group:\(group)"
        case .mid(let mid): "mid:\(mid)"
        case .msid(let msid): "msid:\(msid)"
        case .rtcpMux: "rtcp-mux"
        case .rtcpReducedSize: "rtcp-rsize"
        case .direction(let direction): direction.rawValue
        case .rtpmap(let map): "rtpmap:\(map)"
        case .fmtp(let fmtp): "fmtp:\(fmtp)"
        case .rtcpFeedback(let feedback): "rtcp-fb:\(feedback)"
        case .extmap(let map): "extmap:\(map)"
        case .ssrc(let ssrc): "ssrc:\(ssrc)"
        case .ssrcGroup(let group): "ssrc-group:\(group)"
        case .setup(let role): "setup:\(role.rawValue)"
        case .fingerprint(let fingerprint): "fingerprint:\(fingerprint)"
        case .iceUsernameFragment(let ufrag): "ice-ufrag:\(ufrag)"
        case .icePassword(let password): "ice-pwd:\(password)"
        case .iceOptions(let options): "ice-options:\(options.joined(separator: " "))"
        case .candidate(let candidate): "candidate:\(candidate)"
        case .endOfCandidates: "end-of-candidates"
        case .rid(let rid): "rid:\(rid)"
        case .simulcast(let simulcast): "simulcast:\(simulcast)"
        case .other(let name, let value?): "\(name):\(value)"
        case .other(let name, nil): name
        }
    }
}

/// Token helpers shared by the SDP attribute parsers (RFC 8866 §9 grammar).
enum SDPToken {
    /// RFC 8866 §9 `token-char`: visible ASCII except a few separators.
    static func isTokenCharacter(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue, ascii > 0x20, ascii < 0x7F else { return false }
        return !"\"(),/:;<=>?@[\\]{}".contains(character)
    }

    /// Splits on spaces, refusing an empty value.
    static func words(_ value: Substring, in attribute: String) throws(SDPError) -> [String] {
        let words = value.split(separator: " ").map(String.init)
        guard !words.isEmpty else { throw SDPError(.sdpSyntax, "\(attribute) has an empty value") }
        return words
    }

    /// One word without spaces.
    static func single(_ value: Substring, in attribute: String) throws(SDPError) -> String {
        let words = try words(value, in: attribute)
        guard words.count == 1 else {
            throw SDPError(.sdpSyntax, "\(attribute) takes one value without spaces, got '\(value)'")
        }
        return words[0]
    }

    /// A payload type 0–127.
    static func payloadType(_ text: Substring, in attribute: String) throws(SDPError) -> Int {
        guard let value = Int(text), (0...127).contains(value) else {
            throw SDPError(.sdpSyntax, "\(attribute): '\(text)' is not an RTP payload type 0–127")
        }
        return value
    }
}
