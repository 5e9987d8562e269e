import Foundation

/// Where a user's files go, by the XDG Base Directory Specification (0.8): `$XDG_DATA_HOME`
/// (default `~/.local/share`) and `$XDG_CONFIG_HOME` (default `~/.config`), with `~` from `$HOME`.
/// Foundation's `NSHomeDirectory()` on Linux answers the passwd entry's home and ignores `$HOME`,
/// which breaks `HOME=/srv/x meshnode …` and services whose user has no home of its own.
public enum UserDirectories {
    /// `$HOME` when set and absolute, else the passwd entry's home.
    public static var home: String {
        nonEmpty("HOME") ?? NSHomeDirectory()
    }

    /// `$XDG_DATA_HOME`, or `~/.local/share`.
    public static var dataHome: String {
        nonEmpty("XDG_DATA_HOME") ?? home + "/.local/share"
    }

    /// `$XDG_CONFIG_HOME`, or `~/.config`.
    public static var configHome: String {
        nonEmpty("XDG_CONFIG_HOME") ?? home + "/.config"
    }

    /// `path` with a leading `~/` replaced by ``home``.
    public static func expandingTilde(_ path: String) -> String {
        path == "~" ? home : path.hasPrefix("~/") ? home + path.dropFirst(1) : path
    }

    /// The XDG spec ignores a relative path in these variables ("all paths … must be absolute").
    private static func nonEmpty(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], value.hasPrefix("/") else { return nil }
        return value
    }
}
