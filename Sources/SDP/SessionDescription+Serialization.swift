extension SessionDescription {
    /// The description as text: one line per field, each ending in CRLF (RFC 8866 §5).
    public var serialized: String {
        var lines: [String] = []
        lines.append("v=\(version)")
        lines.append("o=\(origin.username) \(origin.sessionID) \(origin.sessionVersion) \(origin.networkType) \(origin.addressType) \(origin.address)")
        lines.append("s=\(sessionName)")
        if let information { lines.append("i=\(information)") }
        if let uri { lines.append("u=\(uri)") }
        lines += emails.map { "e=\($0)" }
        lines += phones.map { "p=\($0)" }
        if let connection { lines.append("c=\(connection.line)") }
        lines += bandwidths.map { "b=\($0.type):\($0.value)" }
        for timing in timings {
            lines.append("t=\(timing.start) \(timing.stop)")
            lines += timing.repeats.map { "r=\($0)" }
        }
        if let timeZones { lines.append("z=\(timeZones)") }
        if let encryptionKey { lines.append("k=\(encryptionKey)") }
        lines += attributes.map { "a=\($0.text)" }
        for section in media {
            let port = "\(section.port)" + (section.numberOfPorts.map { "/\($0)" } ?? "")
            lines.append((["m=\(section.kind)", port, section.proto] + section.formats).joined(separator: " "))
            if let information = section.information { lines.append("i=\(information)") }
            lines += section.connections.map { "c=\($0.line)" }
            lines += section.bandwidths.map { "b=\($0.type):\($0.value)" }
            if let encryptionKey = section.encryptionKey { lines.append("k=\(encryptionKey)") }
            lines += section.attributes.map { "a=\($0.text)" }
        }
        return lines.map { $0 + "\r\n" }.joined()
    }
}

extension SessionDescription.ConnectionData {
    var line: String { "\(networkType) \(addressType) \(address)" }
}
