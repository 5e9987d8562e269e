/// `a=rid` (RFC 8851 §10): one RTP stream id of a media section, its direction and restrictions.
///
/// A simulcast sender announces one `rid` per encoding (`send`); a receiver that wants simulcast
/// announces the ones it will take (`recv`), and the answer mirrors the direction (RFC 8851 §7).
public struct SDPRestrictionIdentifier: Hashable, Sendable, CustomStringConvertible {
    /// The direction of a `rid` or a `simulcast` stream list.
    public enum Direction: String, Hashable, Sendable {
        case send, recv

        /// The other side's direction for the same stream.
        public var reversed: Direction { self == .send ? .recv : .send }
    }

    /// The longest rid accepted: an `RtpStreamId` travels in a header extension element, whose
    /// one-byte form carries at most 16 bytes (RFC 8285 §4.2, RFC 8852 §3.1); browsers use 1–3 characters.
    public static let maxLength = 16

    /// The rid-id: letters, digits, `-` and `_` (RFC 8851 §10).
    public var id: String
    public var direction: Direction
    /// The payload types the stream may use (`pt=`), empty for any of the section's.
    public var payloadTypes: [Int]
    /// The other restrictions in order (`max-width=1280`, …, RFC 8851 §5), as name and value.
    public var restrictions: [(name: String, value: String)]

    /// Creates a rid.
    public init(id: String, direction: Direction, payloadTypes: [Int] = [], restrictions: [(name: String, value: String)] = []) {
        self.id = id
        self.direction = direction
        self.payloadTypes = payloadTypes
        self.restrictions = restrictions
    }

    /// Whether `text` is a rid-id meshnode takes: 1–16 of letters, digits, `-`, `_` (RFC 8851 §10).
    public static func isValidID(_ text: some StringProtocol) -> Bool {
        !text.isEmpty && text.count <= maxLength && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    init(parsing value: Substring) throws(SDPError) {
        let words = value.split(separator: " ", omittingEmptySubsequences: true)
        guard (2...3).contains(words.count) else {
            throw SDPError(.sdpSyntax, "a=rid:\(value) is not '<rid-id> send|recv [<restrictions>]' (RFC 8851 §10)")
        }
        guard Self.isValidID(words[0]) else {
            throw SDPError(.sdpSyntax, "a=rid:\(value): '\(words[0])' is not a rid-id of 1–\(Self.maxLength) letters, digits, '-' or '_' (RFC 8851 §10)")
        }
        guard let direction = Direction(rawValue: String(words[1])) else {
            throw SDPError(.sdpSyntax, "a=rid:\(value): the direction is '\(words[1])', not send or recv (RFC 8851 §10)")
        }
        id = String(words[0])
        self.direction = direction
        payloadTypes = []
        restrictions = []
        guard words.count == 3 else { return }
        for parameter in words[2].split(separator: ";", omittingEmptySubsequences: false) {
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, !pair[0].isEmpty, !pair[1].isEmpty, pair[0].allSatisfy(SDPToken.isTokenCharacter) else {
                throw SDPError(.sdpSyntax, "a=rid:\(value): restriction '\(parameter)' is not '<name>=<value>' (RFC 8851 §10)")
            }
            if pair[0] == "pt" {
                guard payloadTypes.isEmpty else { throw SDPError(.sdpSyntax, "a=rid:\(value) has pt= twice (RFC 8851 §4)") }
                for type in pair[1].split(separator: ",", omittingEmptySubsequences: false) {
                    payloadTypes.append(try SDPToken.payloadType(type, in: "a=rid:\(id) pt="))
                }
            } else if pair[0].hasPrefix("max-") {
                // RFC 8851 §5: the max-* restrictions are numbers (max-bpp a decimal one).
                guard Double(pair[1]) != nil, !pair[1].hasPrefix("-") else {
                    throw SDPError(.sdpSyntax, "a=rid:\(value): \(pair[0]) takes a non-negative number, not '\(pair[1])' (RFC 8851 §5)")
                }
                restrictions.append((String(pair[0]), String(pair[1])))
            } else {
                restrictions.append((String(pair[0]), String(pair[1])))
            }
        }
    }

    public var description: String {
        var parameters: [String] = []
        if !payloadTypes.isEmpty { parameters.append("pt=" + payloadTypes.map(String.init).joined(separator: ",")) }
        parameters += restrictions.map { "\($0.name)=\($0.value)" }
        return "\(id) \(direction.rawValue)" + (parameters.isEmpty ? "" : " " + parameters.joined(separator: ";"))
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.id == rhs.id && lhs.direction == rhs.direction && lhs.payloadTypes == rhs.payloadTypes
            && lhs.restrictions.map(\.name) == rhs.restrictions.map(\.name) && lhs.restrictions.map(\.value) == rhs.restrictions.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(direction)
        hasher.combine(payloadTypes)
        for restriction in restrictions {
            hasher.combine(restriction.name)
            hasher.combine(restriction.value)
        }
    }
}

/// `a=simulcast` (RFC 8853 §5.1): the simulcast streams of a media section, per direction; each
/// stream is a list of alternative rids, and a `~` marks a stream as paused.
public struct SDPSimulcast: Hashable, Sendable, CustomStringConvertible {
    /// One rid in a stream list, paused or not.
    public struct Identifier: Hashable, Sendable, CustomStringConvertible {
        public var rid: String
        public var paused: Bool

        public init(rid: String, paused: Bool = false) {
            self.rid = rid
            self.paused = paused
        }

        public var description: String { (paused ? "~" : "") + rid }
    }

    /// The streams sent, each a list of alternatives (usually one rid).
    public var send: [[Identifier]]
    /// The streams received.
    public var recv: [[Identifier]]
    /// Whether the attribute listed `recv` before `send` (kept so that it serialises as it came).
    public var receiveListedFirst = false

    /// Creates a simulcast description; one rid per stream when built from plain lists.
    public init(send: [[Identifier]] = [], recv: [[Identifier]] = []) {
        self.send = send
        self.recv = recv
    }

    /// The streams of one direction.
    public func streams(_ direction: SDPRestrictionIdentifier.Direction) -> [[Identifier]] {
        direction == .send ? send : recv
    }

    init(parsing value: Substring) throws(SDPError) {
        let words = value.split(separator: " ", omittingEmptySubsequences: false)
        guard words.count == 2 || words.count == 4 else {
            throw SDPError(.sdpSyntax, "a=simulcast:\(value) is not 'send|recv <streams>[ send|recv <streams>]' (RFC 8853 §5.1)")
        }
        send = []
        recv = []
        var seen: Set<SDPRestrictionIdentifier.Direction> = []
        var rids: Set<String> = []
        for index in stride(from: 0, to: words.count, by: 2) {
            guard let direction = SDPRestrictionIdentifier.Direction(rawValue: String(words[index])), seen.insert(direction).inserted else {
                throw SDPError(.sdpSyntax, "a=simulcast:\(value): '\(words[index])' is not send or recv, or repeats a direction (RFC 8853 §5.1)")
            }
            var streams: [[Identifier]] = []
            for alternatives in words[index + 1].split(separator: ";", omittingEmptySubsequences: false) {
                var stream: [Identifier] = []
                for word in alternatives.split(separator: ",", omittingEmptySubsequences: false) {
                    let paused = word.hasPrefix("~")
                    let rid = paused ? word.dropFirst() : word
                    guard SDPRestrictionIdentifier.isValidID(rid) else {
                        throw SDPError(.sdpSyntax, "a=simulcast:\(value): '\(word)' is not a rid-id (RFC 8853 §5.1)")
                    }
                    // RFC 8853 §5.1: a rid appears at most once in the attribute.
                    guard rids.insert(String(rid)).inserted else {
                        throw SDPError(.sdpSyntax, "a=simulcast:\(value) names rid '\(rid)' twice (RFC 8853 §5.1)")
                    }
                    stream.append(Identifier(rid: String(rid), paused: paused))
                }
                streams.append(stream)
            }
            if direction == .send { send = streams } else { recv = streams }
            if index == 0, words.count == 4 { receiveListedFirst = direction == .recv }
        }
    }

    public var description: String {
        func list(_ streams: [[Identifier]]) -> String {
            streams.map { $0.map(\.description).joined(separator: ",") }.joined(separator: ";")
        }
        var parts: [String] = []
        if !send.isEmpty { parts.append("send \(list(send))") }
        if !recv.isEmpty { parts.insert("recv \(list(recv))", at: receiveListedFirst ? 0 : parts.count) }
        return parts.joined(separator: " ")
    }
}

extension MediaDescription {
    /// `a=rid` lines (RFC 8851).
    public var restrictionIdentifiers: [SDPRestrictionIdentifier] {
        attributes.compactMap { if case .rid(let rid) = $0 { rid } else { nil } }
    }

    /// `a=simulcast` (RFC 8853), if present.
    public var simulcastAttribute: SDPSimulcast? {
        for case .simulcast(let simulcast) in attributes { return simulcast }
        return nil
    }

    /// The rids this section's side sends (`direction` `.send`) or receives in simulcast, in the
    /// order of `a=simulcast`, checked against the `a=rid` lines: every rid in `a=simulcast` must
    /// have an `a=rid` of the same direction (RFC 8853 §5.1), and a rid is declared once (RFC 8851 §4).
    /// Only the first alternative of each stream is taken (meshnode offers no alternatives).
    /// Empty when the section has no simulcast in that direction.
    ///
    /// - Throws: ``SDPError`` `.sdpSyntax` for two `a=simulcast`, a rid declared twice, or a rid in
    ///   `a=simulcast` without its `a=rid` line.
    public func simulcastRIDs(_ direction: SDPRestrictionIdentifier.Direction) throws(SDPError) -> [String] {
        let lists = attributes.compactMap { if case .simulcast(let simulcast) = $0 { simulcast } else { nil } }
        guard lists.count <= 1 else { throw SDPError(.sdpSyntax, "a media section has \(lists.count) a=simulcast lines (RFC 8853 §5.1: at most one)") }
        var declared: [String: SDPRestrictionIdentifier.Direction] = [:]
        for rid in restrictionIdentifiers {
            guard declared.updateValue(rid.direction, forKey: rid.id) == nil else {
                throw SDPError(.sdpSyntax, "a=rid:\(rid.id) is declared twice in one media section (RFC 8851 §4)")
            }
        }
        guard let simulcast = lists.first else { return [] }
        var rids: [String] = []
        for stream in simulcast.streams(direction) {
            for alternative in stream {
                guard declared[alternative.rid] == direction else {
                    throw SDPError(.sdpSyntax, "a=simulcast names rid '\(alternative.rid)' (\(direction.rawValue)) without a matching a=rid:\(alternative.rid) \(direction.rawValue) line (RFC 8853 §5.1)")
                }
            }
            if let first = stream.first, !first.paused { rids.append(first.rid) }
        }
        return rids
    }
}
