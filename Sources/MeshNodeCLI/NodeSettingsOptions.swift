import ArgumentParser
import MeshNode

/// The flags of `meshnode serve` that are node settings: one ArgumentParser option for each
/// entry of `NodeSettings.all` (and a flag for each shorthand such as `--no-tls`), so a setting
/// is declared in that table alone.
///
/// ArgumentParser finds the options of a `ParsableArguments` type by reflecting a fresh value
/// with `Mirror(reflecting:)`, which honours `CustomReflectable`: this type's mirror lists
/// options made from the table, and `init(from:)` decodes them under the same names. `serve
/// --help`, shell completion scripts and the errors for a bad flag (`--stun-port x`, a missing
/// value, `--tls-port=-1`, a repeated option) therefore stay ArgumentParser's own, exactly as
/// for options declared with property wrappers. `ServeSettingsTests` fail if a later
/// ArgumentParser stops reading the mirror.
struct NodeSettingsOptions: ParsableArguments, CustomReflectable {
    /// The settings given as flags; a flag that is absent leaves its setting nil, so that a
    /// config file can set it.
    private(set) var settings = NodeSettings()

    init() {}

    init(from decoder: any Decoder) throws {
        let flags = try decoder.container(keyedBy: FlagName.self)
        for setting in NodeSettings.all {
            let name = FlagName(setting.name)
            let value: NodeSetting.Value?
            switch setting.kind {
            case .integer:
                value = try flags.decode(Option<Int?>.self, forKey: name).wrappedValue.map { .integer($0) }
            case .number:
                value = try flags.decode(Option<Double?>.self, forKey: name).wrappedValue.map { .number($0) }
            case .text:
                value = try flags.decode(Option<String?>.self, forKey: name).wrappedValue.map { .text($0) }
            case .list:
                let values = try flags.decode(Option<[String]>.self, forKey: name).wrappedValue
                value = values.isEmpty ? nil : .list(values)
            case .flag:
                value = try flags.decode(Flag<Bool>.self, forKey: name).wrappedValue ? .flag(true) : nil
            }
            if let value { setting.set(value, in: &settings) }
            // The shorthand wins over a value given for its setting: `--no-tls --tls-port 5349` has no TLS.
            if let shorthand = setting.shorthand, try flags.decode(Flag<Bool>.self, forKey: FlagName(shorthand.name)).wrappedValue {
                setting.set(shorthand.value, in: &settings)
            }
        }
    }

    var customMirror: Mirror {
        var options: [Mirror.Child] = []
        for setting in NodeSettings.all {
            let name = NameSpecification.customLong(setting.name)
            let help = ArgumentHelp(setting.help)
            let option: Any = switch setting.kind {
            case .integer: Option<Int?>(name: name, help: help)
            case .number: Option<Double?>(name: name, help: help)
            case .text: Option<String?>(name: name, help: help)
            case .list: Option<[String]>(wrappedValue: [], name: name, help: help)
            case .flag: Flag(wrappedValue: false, name: name, help: help)
            }
            options.append((label: setting.name, value: option))
            if let shorthand = setting.shorthand {
                let flag = Flag(wrappedValue: false, name: .customLong(shorthand.name), help: ArgumentHelp(shorthand.help))
                options.append((label: shorthand.name, value: flag))
            }
        }
        return Mirror(self, children: options)
    }
}

/// A flag's name without dashes, as the key ArgumentParser decodes its value under.
private struct FlagName: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }

    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}
