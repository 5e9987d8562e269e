import Foundation

/// What `meshnode serve --print-example-config` and `--check-config` print, made from the
/// settings table (``NodeSettings/all``) so that neither can drift from the flags.
extension NodeSetting {
    /// The default as the help text states it (`(default 3478; …)`, `Default: 127.0.0.1 and
    /// ::1.`, `local (…, the default)`, `off by default`), or nil when the help names none: the
    /// help text is the one place a default is written for users, taken from the code that applies it.
    public var defaultDescription: String? {
        let patterns = [
            #"(?:^|[(;]|\. )\s*[Dd]efault:?\s+([^;)]+?)\.?(?:[;)]|$)"#,
            #"(\w+) \([^)]*the default\)"#,
            #"(\w+) by default"#,
        ]
        for pattern in patterns {
            guard let regex = try? NSRegularExpression(pattern: pattern),
                  let match = regex.firstMatch(in: help, range: NSRange(help.startIndex..., in: help)),
                  let range = Range(match.range(at: 1), in: help) else { continue }
            return String(help[range]).trimmingCharacters(in: .whitespaces)
        }
        return kind == .flag ? "false" : nil
    }

    /// A value for the example config: the default when it is one of this kind, else a
    /// placeholder in capitals that the config parser refuses with this key if left in.
    var exampleValue: String {
        let stated = defaultDescription
        switch kind {
        case .integer: return stated.flatMap { Int($0) }.map(String.init) ?? "INTEGER"
        case .number: return stated.flatMap { Double($0) } != nil ? stated! : "NUMBER"
        case .flag: return stated == "on" || stated == "true" ? "true" : "false"
        case .text: return stated.flatMap { $0.contains(" ") || $0.contains("<") || $0.contains("$") ? nil : $0 } ?? "TEXT"
        case .list: return "[VALUE]"
        }
    }

    /// A value as `--check-config` prints it; secrets (`turn-secret`, the passwords of `user`)
    /// are not printed, only that they are set.
    func display(_ value: Value) -> String {
        switch value {
        case .integer(let number): return String(number)
        case .number(let number): return String(number)
        case .flag(let on): return String(on)
        case .text(let text): return name == "turn-secret" ? "(set, not shown)" : text
        case .list(let items):
            let shown = name == "user" ? items.map { item in String(item.prefix { $0 != ":" }) + ":(not shown)" } : items
            return "[" + shown.joined(separator: ", ") + "]"
        }
    }
}

extension NodeSettings {
    /// A YAML config with every setting commented out: its help text, then `# key: value`.
    /// `make install` installs it as /etc/meshnode/meshnode.yaml; as it is, it sets nothing.
    public static var exampleConfig: String {
        var lines = [
            "# meshnode serve: config file (YAML), read with `meshnode serve --config FILE`.",
            "# Every key is a flag of `meshnode serve` without its dashes; a flag given on the",
            "# command line wins over this file. Uncomment a key to set it; a value in CAPITALS is",
            "# a placeholder. `meshnode serve --check-config --config FILE` checks the file and",
            "# prints what the node would use. Made by `meshnode serve --print-example-config`.",
        ]
        for setting in all {
            lines.append("")
            lines += wrap(setting.help, width: 98).map { "# " + $0 }
            lines.append("#\(setting.name): \(setting.exampleValue)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Where an effective value came from (`--check-config`).
    public enum Origin: String, Sendable {
        case `default`, file, flag
    }

    /// Every setting's effective value and its origin, in the table's order: a flag wins over
    /// the file, the file over the default: the value `configuration` resolved where it is one
    /// this machine decides (addresses, paths, limits), else the default as its help states it.
    public static func effective(flags: NodeSettings, file: NodeSettings,
                                 configuration: NodeConfiguration? = nil) -> [(key: String, value: String, origin: Origin)] {
        let resolved = configuration?.resolvedDefaults ?? [:]
        return all.map { setting -> (key: String, value: String, origin: Origin) in
            if let value = setting.value(in: flags) {
                let shorthand = setting.shorthand.flatMap { $0.value == value ? " (--\($0.name))" : nil } ?? ""
                return (setting.name, setting.display(value) + shorthand, .flag)
            }
            if let value = setting.value(in: file) { return (setting.name, setting.display(value), .file) }
            return (setting.name, resolved[setting.name] ?? setting.defaultDescription ?? "unset", .default)
        }
    }

    /// The `--check-config` report: one line per setting, `key  value  (origin)`.
    public static func effectiveReport(flags: NodeSettings, file: NodeSettings, configuration: NodeConfiguration? = nil) -> String {
        let rows = effective(flags: flags, file: file, configuration: configuration)
        let width = rows.map(\.key.count).max() ?? 0
        return rows.map { row in
            row.key + String(repeating: " ", count: width - row.key.count + 2) + row.value + "  (\(row.origin.rawValue))"
        }.joined(separator: "\n") + "\n"
    }

    private static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}

extension NodeConfiguration {
    /// The defaults that depend on this machine or its environment, as the node will use them:
    /// `bind` (whether ::1 is up), `data-dir` and `node-key` (`$STATE_DIRECTORY`, `$XDG_DATA_HOME`,
    /// `$HOME`), `max-connections` (the open-file limit).
    var resolvedDefaults: [String: String] {
        [
            "bind": "[" + turn.bindAddresses.joined(separator: ", ") + "]",
            "data-dir": signaling.dataDirectory,
            "node-key": signaling.nodeKeyPath,
            "max-connections": String(signaling.maxConnections),
        ]
    }
}
