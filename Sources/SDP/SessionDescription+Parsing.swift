extension SessionDescription {
    /// The largest description accepted, in bytes: browsers' offers are a few kilobytes, and a bound
    /// keeps a hostile peer from making the parser allocate without limit.
    public static let maximumSize = 256 * 1024

    /// Parses a session description (RFC 8866 §5, §9). Lines may end in CRLF or LF.
    ///
    /// - Throws: ``SDPError`` `.sdpSyntax` naming the line that breaks the grammar: a missing or
    ///   misplaced `v=`, `o=`, `s=` or `t=`, an unknown type letter (RFC 8866 §5: a parser must reject
    ///   what it does not understand), a malformed field or attribute.
    public init(parsing text: String) throws(SDPError) {
        guard text.utf8.count <= Self.maximumSize else {
            throw SDPError(.sdpSyntax, "session description of \(text.utf8.count) bytes exceeds \(Self.maximumSize)")
        }
        var lines: [(number: Int, type: Character, value: Substring)] = []
        // Swift treats CRLF as one Character, so split on both forms.
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\r\n" || $0 == "\n" }).enumerated() {
            if line.isEmpty { continue }
            let number = index + 1
            guard line.count >= 2, let type = line.first, type.isASCII, type.isLowercase,
                  line[line.index(after: line.startIndex)] == "="
            else {
                throw SDPError(.sdpSyntax, "line \(number) '\(line.prefix(40))' is not '<type>=<value>' (RFC 8866 §5)")
            }
            lines.append((number, type, line.dropFirst(2)))
        }
        var cursor = SDPLineCursor(lines: lines)

        let versionLine = try cursor.require("v")
        guard versionLine.value == "0" else {
            throw SDPError(.sdpSyntax, "line \(versionLine.number): version '\(versionLine.value)' is not 0 (RFC 8866 §5.1)")
        }
        let originLine = try cursor.require("o")
        let originFields = originLine.value.split(separator: " ")
        guard originFields.count == 6 else {
            throw SDPError(.sdpSyntax, "line \(originLine.number): o= needs 6 fields, got \(originFields.count) (RFC 8866 §5.2)")
        }
        let origin = Origin(username: String(originFields[0]), sessionID: String(originFields[1]), sessionVersion: String(originFields[2]),
                            networkType: String(originFields[3]), addressType: String(originFields[4]), address: String(originFields[5]))
        let sessionName = String(try cursor.require("s").value)
        self.init(origin: origin, sessionName: sessionName, timings: [])
        information = cursor.optional("i").map { String($0.value) }
        uri = cursor.optional("u").map { String($0.value) }
        while let line = cursor.optional("e") { emails.append(String(line.value)) }
        while let line = cursor.optional("p") { phones.append(String(line.value)) }
        if let line = cursor.optional("c") { connection = try Self.connection(line) }
        while let line = cursor.optional("b") { bandwidths.append(try Self.bandwidth(line)) }
        while let line = cursor.optional("t") {
            let fields = line.value.split(separator: " ")
            guard fields.count == 2, let start = UInt64(fields[0]), let stop = UInt64(fields[1]) else {
                throw SDPError(.sdpSyntax, "line \(line.number): t= needs a start and a stop time (RFC 8866 §5.9)")
            }
            var timing = Timing(start: start, stop: stop)
            while let repeatLine = cursor.optional("r") { timing.repeats.append(String(repeatLine.value)) }
            timings.append(timing)
        }
        guard !timings.isEmpty else {
            throw SDPError(.sdpSyntax, "line \(cursor.currentLineNumber): expected t= after the session-level fields (RFC 8866 §5)")
        }
        timeZones = cursor.optional("z").map { String($0.value) }
        encryptionKey = cursor.optional("k").map { String($0.value) }
        while let line = cursor.optional("a") { attributes.append(try Self.attribute(line)) }

        while let line = cursor.optional("m") {
            var section = try Self.mediaLine(line)
            section.information = cursor.optional("i").map { String($0.value) }
            while let line = cursor.optional("c") { section.connections.append(try Self.connection(line)) }
            while let line = cursor.optional("b") { section.bandwidths.append(try Self.bandwidth(line)) }
            section.encryptionKey = cursor.optional("k").map { String($0.value) }
            while let line = cursor.optional("a") { section.attributes.append(try Self.attribute(line)) }
            media.append(section)
        }
        if let line = cursor.next {
            throw SDPError(.sdpSyntax, "line \(line.number): unexpected or unknown '\(line.type)=' line here (RFC 8866 §5 order)")
        }
    }

    private static func connection(_ line: SDPLineCursor.Line) throws(SDPError) -> ConnectionData {
        let fields = line.value.split(separator: " ")
        guard fields.count == 3 else {
            throw SDPError(.sdpSyntax, "line \(line.number): c= needs '<nettype> <addrtype> <address>' (RFC 8866 §5.7)")
        }
        return ConnectionData(networkType: String(fields[0]), addressType: String(fields[1]), address: String(fields[2]))
    }

    private static func bandwidth(_ line: SDPLineCursor.Line) throws(SDPError) -> Bandwidth {
        let parts = line.value.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let value = UInt64(parts[1]) else {
            throw SDPError(.sdpSyntax, "line \(line.number): b= needs '<bwtype>:<bandwidth>' (RFC 8866 §5.8)")
        }
        return Bandwidth(type: String(parts[0]), value: value)
    }

    private static func attribute(_ line: SDPLineCursor.Line) throws(SDPError) -> SDPAttribute {
        do {
            return try SDPAttribute(parsing: line.value)
        } catch {
            throw SDPError(error.code, "line \(line.number): \(error.reason)")
        }
    }

    private static func mediaLine(_ line: SDPLineCursor.Line) throws(SDPError) -> MediaDescription {
        let fields = line.value.split(separator: " ")
        guard fields.count >= 3 else {
            throw SDPError(.sdpSyntax, "line \(line.number): m= needs '<media> <port> <proto> <fmt>…' (RFC 8866 §5.14)")
        }
        let portParts = fields[1].split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(portParts.count), let port = Int(portParts[0]), (0...65535).contains(port) else {
            throw SDPError(.sdpSyntax, "line \(line.number): m= port '\(fields[1])' is not 0–65535")
        }
        var numberOfPorts: Int?
        if portParts.count == 2 {
            guard let count = Int(portParts[1]), count > 0 else {
                throw SDPError(.sdpSyntax, "line \(line.number): m= port count '\(portParts[1])' is not a positive number")
            }
            numberOfPorts = count
        }
        let proto = String(fields[2])
        let formats = fields.dropFirst(3).map(String.init)
        if proto.contains("RTP") {
            for format in formats where Int(format).map({ !(0...127).contains($0) }) ?? true {
                throw SDPError(.sdpSyntax, "line \(line.number): m= format '\(format)' is not an RTP payload type 0–127")
            }
        }
        return MediaDescription(kind: String(fields[0]), port: port, numberOfPorts: numberOfPorts, proto: proto, formats: formats)
    }
}

/// Walks the lines of a description in order, one type letter at a time.
struct SDPLineCursor {
    typealias Line = (number: Int, type: Character, value: Substring)
    private let lines: [Line]
    private var index = 0

    init(lines: [Line]) { self.lines = lines }

    var next: Line? { index < lines.count ? lines[index] : nil }

    var currentLineNumber: Int { next?.number ?? (lines.last?.number ?? 0) + 1 }

    mutating func optional(_ type: Character) -> Line? {
        guard let line = next, line.type == type else { return nil }
        index += 1
        return line
    }

    mutating func require(_ type: Character) throws(SDPError) -> Line {
        guard let line = optional(type) else {
            throw SDPError(.sdpSyntax, "line \(currentLineNumber): expected '\(type)=' (RFC 8866 §5 order: v, o, s, …, t, a, m)")
        }
        return line
    }
}
