/// Text from peers and other nodes (names, chat, reasons, node records) made safe to print on a
/// terminal: a control character (C0, DEL, C1: ESC starts the escape sequences that can move the
/// cursor, rewrite earlier lines, retitle the window or, on some terminals, write files), a
/// bidirectional override or isolate (they reorder what the reader sees, CVE-2021-42574) or a
/// line or paragraph separator is shown as `\u{XX}` instead of being sent to the terminal.
/// Every `print` of peer-supplied text in the CLI goes through ``safe(_:json:keepLayout:)``, and
/// so do the reasons a peer gives (`reject`, `hangup`) before they reach a log or a report.
public enum TerminalText {
    /// `text` with every unsafe character escaped. In `json` output the escape is JSON's own
    /// (`\u001b`), which a JSON reader decodes back to the original: the output stays exact and
    /// valid, since a JSON encoder escapes C0 inside strings itself, so the characters left to
    /// escape (DEL, C1, bidi, separators) can only stand inside strings; raw newlines and tabs
    /// in JSON are the encoder's own layout and are kept. Newlines and tabs are also kept when
    /// `keepLayout` is set (for multi-line text this program composed itself).
    public static func safe(_ text: String, json: Bool = false, keepLayout: Bool = false) -> String {
        let keepLayout = keepLayout || json
        guard text.unicodeScalars.contains(where: { isUnsafe($0, keepLayout: keepLayout) }) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard isUnsafe(scalar, keepLayout: keepLayout) else {
                out.append(scalar)
                continue
            }
            let hex = String(scalar.value, radix: 16)
            let escape = json ? "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex : "\\u{\(hex)}"
            out.append(contentsOf: escape.unicodeScalars)
        }
        return String(out)
    }

    /// Whether `scalar` must not reach a terminal as it is.
    public static func isUnsafe(_ scalar: Unicode.Scalar, keepLayout: Bool = false) -> Bool {
        switch scalar.value {
        case 0x0A, 0x09: !keepLayout
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0x061C: true  // bidi marks, embeddings, overrides, isolates
        case 0x2028, 0x2029: true  // line and paragraph separators
        default: false
        }
    }
}
