import Foundation
import ICE
import Yams
import STUN
import Signaling
import SignalingCluster
import TURNServer

/// One setting of `meshnode serve`, an entry of ``NodeSettings/all``.
///
/// The entry is the setting's only declaration: its name is the flag (`--name`) and the YAML key,
/// its kind decides how both are read, its help is the line of `serve --help`, and its rule is
/// checked by ``NodeConfiguration`` once flags and file are merged.
public struct NodeSetting: Sendable {
    /// The flag without its dashes, and the YAML key.
    public let name: String
    /// The text of the flag in `serve --help`, with the default.
    public let help: String
    /// A flag that sets this setting to a fixed value, listed right after it (`--no-tls`).
    public let shorthand: Shorthand?
    let storage: Storage

    /// How a setting is written on the command line and in YAML.
    public enum Kind: Sendable, Equatable {
        /// `--name 3478`; `name: 3478`.
        case integer
        /// `--name 2.5`; `name: 2.5`.
        case number
        /// `--name TEXT`; `name: TEXT`.
        case text
        /// Repeatable: `--name A --name B`; `name: [A, B]`.
        case list
        /// `--name` alone turns it on; `name: true` or `name: false`.
        case flag
    }

    /// A value of a setting, of the setting's kind.
    public enum Value: Sendable, Equatable {
        case integer(Int)
        case number(Double)
        case text(String)
        case list([String])
        case flag(Bool)
    }

    /// A flag without a value that stands for one value of its setting: `--no-tls` is
    /// `tls-port: -1`. It exists on the command line only; its value passes the setting's rule.
    public struct Shorthand: Sendable {
        /// The flag without its dashes.
        public let name: String
        /// The text of the flag in `serve --help`.
        public let help: String
        /// The value the flag gives its setting.
        public let value: Value
    }

    /// The field of ``NodeSettings`` that holds the value, and the rule it must follow.
    enum Storage: Sendable {
        case integer(WritableKeyPath<NodeSettings, Int?> & Sendable, Rule<Int>?)
        case number(WritableKeyPath<NodeSettings, Double?> & Sendable, Rule<Double>?)
        case text(WritableKeyPath<NodeSettings, String?> & Sendable, Rule<String>?)
        /// The rule applies to each element.
        case list(WritableKeyPath<NodeSettings, [String]?> & Sendable, Rule<String>?)
        case flag(WritableKeyPath<NodeSettings, Bool?> & Sendable)
    }

    /// What a value must be, as the reason a user reads when it is not.
    ///
    /// Only rules that need nothing but the value live here. A value that `NodeConfiguration`
    /// parses into another type (a `NAME:PASSWORD` user, a CIDR, a port range, a log level) is
    /// checked where it is parsed, so that each parse is written once; so is a rule that spans
    /// two settings (`tls-cert` with `tls-key`).
    struct Rule<Checked: Sendable>: Sendable {
        /// Why `value` is refused, or nil when it is fine.
        let refusal: @Sendable (Checked) -> String?
    }

    /// How the setting is written, from the type of its field.
    public var kind: Kind {
        switch storage {
        case .integer: .integer
        case .number: .number
        case .text: .text
        case .list: .list
        case .flag: .flag
        }
    }

    /// The field this setting is kept in.
    var field: PartialKeyPath<NodeSettings> {
        switch storage {
        case .integer(let path, _): path
        case .number(let path, _): path
        case .text(let path, _): path
        case .list(let path, _): path
        case .flag(let path): path
        }
    }

    /// This setting's value in `settings`, or nil when it is not set.
    public func value(in settings: NodeSettings) -> Value? {
        switch storage {
        case .integer(let path, _): settings[keyPath: path].map(Value.integer)
        case .number(let path, _): settings[keyPath: path].map(Value.number)
        case .text(let path, _): settings[keyPath: path].map(Value.text)
        case .list(let path, _): settings[keyPath: path].map(Value.list)
        case .flag(let path): settings[keyPath: path].map(Value.flag)
        }
    }

    /// Sets this setting in `settings`; `value` must be of the setting's ``kind``.
    public func set(_ value: Value, in settings: inout NodeSettings) {
        switch (storage, value) {
        case (.integer(let path, _), .integer(let value)): settings[keyPath: path] = value
        case (.number(let path, _), .number(let value)): settings[keyPath: path] = value
        case (.text(let path, _), .text(let value)): settings[keyPath: path] = value
        case (.list(let path, _), .list(let value)): settings[keyPath: path] = value
        case (.flag(let path), .flag(let value)): settings[keyPath: path] = value
        default: preconditionFailure("\(value) is not a value of the \(kind) setting '\(name)'")
        }
    }

    /// Takes this setting from `base` into `result` when `settings` leaves it unset.
    func merge(_ settings: NodeSettings, over base: NodeSettings, into result: inout NodeSettings) {
        switch storage {
        case .integer(let path, _): result[keyPath: path] = settings[keyPath: path] ?? base[keyPath: path]
        case .number(let path, _): result[keyPath: path] = settings[keyPath: path] ?? base[keyPath: path]
        case .text(let path, _): result[keyPath: path] = settings[keyPath: path] ?? base[keyPath: path]
        case .list(let path, _): result[keyPath: path] = settings[keyPath: path] ?? base[keyPath: path]
        case .flag(let path): result[keyPath: path] = settings[keyPath: path] ?? base[keyPath: path]
        }
    }

    /// Checks the value in `settings` against this setting's rule.
    func check(_ settings: NodeSettings) throws {
        guard let value = self.value(in: settings), value != shorthand?.value else { return }
        let refusal: String?
        switch (storage, value) {
        case (.integer(_, let rule?), .integer(let value)): refusal = rule.refusal(value)
        case (.number(_, let rule?), .number(let value)): refusal = rule.refusal(value)
        case (.text(_, let rule?), .text(let value)): refusal = rule.refusal(value)
        case (.list(_, let rule?), .list(let values)): refusal = values.lazy.compactMap(rule.refusal).first
        default: refusal = nil
        }
        if let refusal { throw NodeConfigurationError(key: name, reason: refusal) }
    }

    /// The value of this setting's key in the YAML file `source`; nil for a null (`key: ~`),
    /// which leaves the setting unset.
    func value(yaml node: Yams.Node, source: String) throws -> Value? {
        if node.null != nil { return nil }
        let scalar = node.scalar?.string
        func refuse(_ expected: String) -> NodeConfigurationError {
            NodeConfigurationError(key: name, reason: "\(source): " + (scalar.map { "'\($0)' is not \(expected)" } ?? "expected \(expected)"))
        }
        switch kind {
        case .integer:
            guard let value = node.int else { throw refuse("an integer") }
            return .integer(value)
        case .number:
            guard let value = node.float else { throw refuse("a number") }
            return .number(value)
        case .text:
            guard let scalar else { throw refuse("a single value") }
            return .text(scalar)
        case .list:
            let elements = node.sequence.map { $0.map(\.scalar?.string) }
            guard let elements, !elements.contains(nil) else { throw refuse("a list like [A, B]") }
            return .list(elements.compactMap { $0 })
        case .flag:
            guard let value = node.bool else { throw refuse("true or false") }
            return .flag(value)
        }
    }
}

// MARK: - Declaring settings

extension NodeSetting {
    static func integer(_ name: String, _ path: WritableKeyPath<NodeSettings, Int?> & Sendable, _ rule: Rule<Int>? = nil,
                        help: String, shorthand: Shorthand? = nil) -> NodeSetting {
        NodeSetting(name: name, help: help, shorthand: shorthand, storage: .integer(path, rule))
    }

    static func number(_ name: String, _ path: WritableKeyPath<NodeSettings, Double?> & Sendable, _ rule: Rule<Double>? = nil,
                       help: String) -> NodeSetting {
        NodeSetting(name: name, help: help, shorthand: nil, storage: .number(path, rule))
    }

    static func text(_ name: String, _ path: WritableKeyPath<NodeSettings, String?> & Sendable, _ rule: Rule<String>? = nil,
                     help: String) -> NodeSetting {
        NodeSetting(name: name, help: help, shorthand: nil, storage: .text(path, rule))
    }

    static func list(_ name: String, _ path: WritableKeyPath<NodeSettings, [String]?> & Sendable, _ rule: Rule<String>? = nil,
                     help: String) -> NodeSetting {
        NodeSetting(name: name, help: help, shorthand: nil, storage: .list(path, rule))
    }

    static func flag(_ name: String, _ path: WritableKeyPath<NodeSettings, Bool?> & Sendable, help: String) -> NodeSetting {
        NodeSetting(name: name, help: help, shorthand: nil, storage: .flag(path))
    }
}

extension NodeSetting.Rule where Checked == Int {
    static var port: Self {
        Self { (0...65_535).contains($0) ? nil : "\($0) is not a port" }
    }

    static func atLeast(_ minimum: Int, _ unit: String? = nil) -> Self {
        Self { $0 >= minimum ? nil : "must be at least \(minimum)" + (unit.map { " " + $0 } ?? "") }
    }

    static func within(_ range: ClosedRange<Int>, _ unit: String? = nil) -> Self {
        Self { range.contains($0) ? nil : "must be \(range.lowerBound) to \(range.upperBound)" + (unit.map { " " + $0 } ?? "") }
    }
}

extension NodeSetting.Rule where Checked == Double {
    static func within(_ range: ClosedRange<Double>, _ unit: String) -> Self {
        // 3600, not 3600.0: the bounds read as the user would write them.
        func text(_ bound: Double) -> String { bound == bound.rounded() ? String(Int(bound)) : String(bound) }
        let reason = "must be \(text(range.lowerBound)) to \(text(range.upperBound)) \(unit)"
        return Self { range.contains($0) ? nil : reason }
    }
}

extension NodeSetting.Rule where Checked == String {
    static var notEmpty: Self {
        Self { $0.isEmpty ? "must not be empty" : nil }
    }

    static func bytes(_ range: ClosedRange<Int>) -> Self {
        Self { range.contains($0.utf8.count) ? nil : "must be \(range.lowerBound) to \(range.upperBound) bytes" }
    }

    /// Listening and relay addresses are numbers: a name would be resolved to one address of
    /// several, and silently.
    static var numericIPAddress: Self {
        Self { IPAddress(string: $0) == nil ? "\($0) is not a numeric IP address" : nil }
    }

    /// A DNS name (RFC 1123 §2.1: labels of letters, digits and hyphens, at most 63 bytes, 253
    /// in all), not an IP address: certificates and `turns:` URLs need a name.
    static var dnsName: Self {
        Self { text in
            if IPAddress(string: text) != nil { return "'\(text)' is an IP address, not a name (use external-ip for a public address)" }
            let labels = text.split(separator: ".", omittingEmptySubsequences: false)
            let valid = text.utf8.count <= 253 && labels.allSatisfy { label in
                (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                    && label.utf8.allSatisfy { $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) }
            }
            return valid ? nil : "'\(text.prefix(80))' is not a DNS name (letters, digits, hyphens and dots)"
        }
    }

    /// `PUBLIC[/PRIVATE]`, coturn's `--external-ip` form.
    static var externalAddress: Self {
        Self { ExternalAddress($0) == nil ? "'\($0)' is not PUBLIC or PUBLIC/PRIVATE, two numeric IP addresses of one family" : nil }
    }

    /// A node to link to: ws(s):// as docs/mesh.md writes it; http(s):// is the same endpoint.
    static var webSocketURL: Self {
        Self { text in
            guard let url = URL(string: text), ["ws", "wss", "http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                return "'\(text)' is not a ws://HOST:PORT/ws URL"
            }
            // A pinned certificate, wss://HOST:PORT/ws#sha256=HEX (LinkTLS).
            do { _ = try LinkTLS.split(text) } catch let error as SignalingError { return error.reason } catch { return "\(error)" }
            return nil
        }
    }

    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (docs/cluster.md).
    static var clusterURL: Self {
        Self { text in
            if case .failure(let error) = PostgresCluster.Location.parse(text) { return error.reason }
            return nil
        }
    }

    /// A cluster member's public `/ws` URL (`member-url`): ws:// or wss://, a host, at most
    /// ``ClusterRouter/maxMemberURLBytes`` bytes.
    static var memberURL: Self {
        Self { text in
            ClusterRouter.isValidMemberURL(text) ? nil : "'\(text.prefix(80))' is not a ws://HOST[:PORT]/PATH or wss:// URL of at most \(ClusterRouter.maxMemberURLBytes) bytes"
        }
    }

    /// A cluster member's name (it becomes part of a PostgreSQL channel name).
    static var memberName: Self {
        Self { ClusterRouter.isValidMember($0) ? nil : "'\($0.prefix(40))' is not a member name: 1 to 32 of A-Z a-z 0-9 _ -" }
    }

    /// A node's Ed25519 public key, base64 (`meshnode` prints it as node-key at start).
    static var nodeKey: Self {
        Self { Identity.decodeKey($0) == nil ? "'\($0.prefix(60))' is not a base64 Ed25519 public key (32 bytes)" : nil }
    }

    static func oneOf(_ values: [String]) -> Self {
        Self { values.contains($0) ? nil : "'\($0)' is not one of \(values.joined(separator: ", "))" }
    }

    /// `HOST:PORT`, as a login names the node it dialled.
    static var authority: Self {
        Self { LoginBody.authority($0) == nil ? "'\($0)' is not HOST:PORT" : nil }
    }

    /// A web origin, `http(s)://HOST[:PORT]` (RFC 6454 §6.1), or `*` for any.
    static var origin: Self {
        Self { text in
            if text == "*" { return nil }
            guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil,
                  url.path.isEmpty || url.path == "/" else {
                return "'\(text)' is not an origin like https://HOST[:PORT], nor *"
            }
            return nil
        }
    }

    static var directory: Self {
        Self { path in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                return "\(path) is not a directory"
            }
            return nil
        }
    }
}
