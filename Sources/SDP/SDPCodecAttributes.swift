/// `a=rtpmap` (RFC 8866 §6.6): a dynamic payload type's encoding, clock rate and channels.
public struct SDPRTPMap: Hashable, Sendable, CustomStringConvertible {
    public var payloadType: Int
    /// The encoding name as written (`opus`, `VP8`); compare case-insensitively (RFC 8866 §6.6).
    public var encoding: String
    public var clockRate: Int
    /// The channel count for audio; browsers write `/2` for Opus (RFC 7587 §7).
    public var channels: Int?

    public init(payloadType: Int, encoding: String, clockRate: Int, channels: Int? = nil) {
        self.payloadType = payloadType
        self.encoding = encoding
        self.clockRate = clockRate
        self.channels = channels
    }

    init(parsing value: Substring) throws(SDPError) {
        let words = value.split(separator: " ")
        guard words.count == 2 else { throw SDPError(.sdpSyntax, "a=rtpmap:\(value) is not '<pt> <encoding>/<clock>[/<channels>]'") }
        payloadType = try SDPToken.payloadType(words[0], in: "a=rtpmap")
        let parts = words[1].split(separator: "/", omittingEmptySubsequences: false)
        guard (2...3).contains(parts.count), !parts[0].isEmpty, let clock = Int(parts[1]), clock > 0 else {
            throw SDPError(.sdpSyntax, "a=rtpmap:\(value) has no valid '<encoding>/<clock rate>'")
        }
        encoding = String(parts[0])
        clockRate = clock
        if parts.count == 3 {
            guard let channels = Int(parts[2]), channels > 0 else {
                throw SDPError(.sdpSyntax, "a=rtpmap:\(value) has an invalid channel count")
            }
            self.channels = channels
        }
    }

    public var description: String {
        "\(payloadType) \(encoding)/\(clockRate)" + (channels.map { "/\($0)" } ?? "")
    }
}

/// `a=fmtp` (RFC 8866 §6.15): format parameters, usually `key=value` pairs separated by `;`.
public struct SDPFormatParameters: Hashable, Sendable, CustomStringConvertible {
    public var payloadType: Int
    /// The parameter text as written, e.g. `minptime=10;useinbandfec=1`.
    public var parameters: String

    public init(payloadType: Int, parameters: String) {
        self.payloadType = payloadType
        self.parameters = parameters
    }

    /// Creates parameters from pairs, in order.
    public init(payloadType: Int, pairs: KeyValuePairs<String, String>) {
        self.init(payloadType: payloadType, parameters: pairs.map { "\($0.key)=\($0.value)" }.joined(separator: ";"))
    }

    init(parsing value: Substring) throws(SDPError) {
        guard let space = value.firstIndex(of: " ") else {
            throw SDPError(.sdpSyntax, "a=fmtp:\(value) is not '<pt> <parameters>'")
        }
        payloadType = try SDPToken.payloadType(value[..<space], in: "a=fmtp")
        parameters = String(value[value.index(after: space)...])
        guard !parameters.isEmpty else { throw SDPError(.sdpSyntax, "a=fmtp:\(value) has no parameters") }
    }

    /// The `key=value` pairs, keys lowercased (RFC 7587 §6.1 and RFC 7741 §6.1 parameters are case-insensitive);
    /// a part without `=` maps to an empty string.
    public var values: [String: String] {
        var values: [String: String] = [:]
        for part in parameters.split(separator: ";") {
            let trimmed = part.trimmingCharacters(in: " ")
            if let equals = trimmed.firstIndex(of: "=") {
                values[trimmed[..<equals].lowercased()] = String(trimmed[trimmed.index(after: equals)...])
            } else {
                values[trimmed.lowercased()] = ""
            }
        }
        return values
    }

    public var description: String { "\(payloadType) \(parameters)" }
}

/// `a=rtcp-fb` (RFC 4585 §4.2): an RTCP feedback message a payload type supports.
public struct SDPRTCPFeedback: Hashable, Sendable, CustomStringConvertible {
    /// The payload type, or `nil` for `*` (all).
    public var payloadType: Int?
    /// `nack`, `ccm`, `goog-remb`, `transport-cc`, …
    public var type: String
    /// `pli` for `nack pli`, `fir` for `ccm fir`.
    public var parameter: String?

    public init(payloadType: Int?, type: String, parameter: String? = nil) {
        self.payloadType = payloadType
        self.type = type
        self.parameter = parameter
    }

    init(parsing value: Substring) throws(SDPError) {
        let words = value.split(separator: " ")
        guard words.count >= 2 else { throw SDPError(.sdpSyntax, "a=rtcp-fb:\(value) is not '<pt> <type> [<parameter>]'") }
        payloadType = words[0] == "*" ? nil : try SDPToken.payloadType(words[0], in: "a=rtcp-fb")
        type = String(words[1])
        parameter = words.count > 2 ? words[2...].joined(separator: " ") : nil
    }

    public var description: String {
        "\(payloadType.map(String.init) ?? "*") \(type)" + (parameter.map { " \($0)" } ?? "")
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> Substring {
        var result = self
        while result.first == set { result = result.dropFirst() }
        while result.last == set { result = result.dropLast() }
        return result
    }
}
