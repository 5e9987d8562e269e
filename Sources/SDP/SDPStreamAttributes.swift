/// The four media directions (RFC 8866 §6.7, RFC 3264 §6.1).
public enum SDPDirection: String, Hashable, Sendable {
    case sendrecv, sendonly, recvonly, inactive

    /// The direction an answer takes when this side sends and receives what it can (RFC 3264 §6.1).
    public var reversed: SDPDirection {
        switch self {
        case .sendonly: .recvonly
        case .recvonly: .sendonly
        case .sendrecv, .inactive: self
        }
    }
}

/// `a=group` (RFC 5888 §5): a semantics tag and the mids it groups.
public struct SDPGroup: Hashable, Sendable, CustomStringConvertible {
    /// `BUNDLE`, `LS`, …
    public var semantics: String
    public var identifiers: [String]

    public init(semantics: String, identifiers: [String]) {
        self.semantics = semantics
        self.identifiers = identifiers
    }

    init(parsing value: Substring) throws(SDPError) {
        let words = try SDPToken.words(value, in: "a=group")
        semantics = words[0]
        identifiers = Array(words.dropFirst())
    }

    public var description: String { ([semantics] + identifiers).joined(separator: " ") }
}

/// `a=msid` (RFC 8830 §2): the MediaStream and track a media section belongs to.
public struct SDPMediaStreamID: Hashable, Sendable, CustomStringConvertible {
    /// The stream id; `-` for a track without a stream.
    public var streamID: String
    /// The track id (the "appdata"), which JSEP no longer requires.
    public var trackID: String?

    public init(streamID: String, trackID: String? = nil) {
        self.streamID = streamID
        self.trackID = trackID
    }

    init(parsing value: Substring) throws(SDPError) {
        let words = try SDPToken.words(value, in: "a=msid")
        guard words.count <= 2 else { throw SDPError(.sdpSyntax, "a=msid:\(value) has more than a stream and a track id") }
        streamID = words[0]
        trackID = words.count == 2 ? words[1] : nil
    }

    public var description: String { streamID + (trackID.map { " \($0)" } ?? "") }
}

/// `a=extmap` (RFC 8285 §8): a header extension's local id and URI.
public struct SDPExtensionMap: Hashable, Sendable, CustomStringConvertible {
    /// 1–14 for one-byte headers, up to 255 with two-byte headers (RFC 8285 §5).
    public var id: Int
    public var direction: SDPDirection?
    public var uri: String
    /// Extension attributes after the URI.
    public var attributes: String?

    public init(id: Int, direction: SDPDirection? = nil, uri: String, attributes: String? = nil) {
        self.id = id
        self.direction = direction
        self.uri = uri
        self.attributes = attributes
    }

    init(parsing value: Substring) throws(SDPError) {
        let words = value.split(separator: " ")
        guard words.count >= 2 else { throw SDPError(.sdpSyntax, "a=extmap:\(value) is not '<id>[/<direction>] <uri>'") }
        let idParts = words[0].split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(idParts.count), let id = Int(idParts[0]), (1...255).contains(id) else {
            throw SDPError(.sdpSyntax, "a=extmap:\(value) has an id outside 1–255 (RFC 8285 §8)")
        }
        self.id = id
        if idParts.count == 2 {
            guard let direction = SDPDirection(rawValue: String(idParts[1])) else {
                throw SDPError(.sdpSyntax, "a=extmap:\(value) has an unknown direction '\(idParts[1])'")
            }
            self.direction = direction
        }
        uri = String(words[1])
        attributes = words.count > 2 ? words[2...].joined(separator: " ") : nil
    }

    public var description: String {
        "\(id)" + (direction.map { "/\($0.rawValue)" } ?? "") + " \(uri)" + (attributes.map { " \($0)" } ?? "")
    }
}

/// `a=ssrc` (RFC 5576 §4.1): an attribute of one synchronization source, such as `cname` or `msid`.
public struct SDPSourceAttribute: Hashable, Sendable, CustomStringConvertible {
    public var ssrc: UInt32
    /// `cname`, `msid`, …
    public var attribute: String
    public var value: String?

    public init(ssrc: UInt32, attribute: String, value: String? = nil) {
        self.ssrc = ssrc
        self.attribute = attribute
        self.value = value
    }

    init(parsing text: Substring) throws(SDPError) {
        guard let space = text.firstIndex(of: " "), let ssrc = UInt32(text[..<space]) else {
            throw SDPError(.sdpSyntax, "a=ssrc:\(text) is not '<ssrc> <attribute>[:<value>]' with a 32-bit ssrc")
        }
        self.ssrc = ssrc
        let rest = text[text.index(after: space)...]
        if let colon = rest.firstIndex(of: ":") {
            attribute = String(rest[..<colon])
            value = String(rest[rest.index(after: colon)...])
        } else {
            attribute = String(rest)
        }
        guard !attribute.isEmpty else { throw SDPError(.sdpSyntax, "a=ssrc:\(text) has no attribute name") }
    }

    public var description: String { "\(ssrc) \(attribute)" + (value.map { ":\($0)" } ?? "") }
}

/// `a=ssrc-group` (RFC 5576 §4.2): related sources, e.g. `FID` for a stream and its RTX (RFC 4588).
public struct SDPSourceGroup: Hashable, Sendable, CustomStringConvertible {
    public var semantics: String
    public var ssrcs: [UInt32]

    public init(semantics: String, ssrcs: [UInt32]) {
        self.semantics = semantics
        self.ssrcs = ssrcs
    }

    init(parsing value: Substring) throws(SDPError) {
        let words = try SDPToken.words(value, in: "a=ssrc-group")
        semantics = words[0]
        var ssrcs: [UInt32] = []
        for word in words.dropFirst() {
            guard let ssrc = UInt32(word) else { throw SDPError(.sdpSyntax, "a=ssrc-group:\(value): '\(word)' is not a 32-bit ssrc") }
            ssrcs.append(ssrc)
        }
        self.ssrcs = ssrcs
    }

    public var description: String { ([semantics] + ssrcs.map(String.init)).joined(separator: " ") }
}
