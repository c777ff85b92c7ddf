import Foundation

/// Text from a file (tensor names, metadata, member names, global names) made safe for a terminal: every
/// control character (C0, DEL, C1), and the bidirectional overrides and isolates that reorder what a reader
/// sees, is written as a visible escape (`\n`, `\r`, `\t`, `\x1b`, `\u{202e}`), so hostile bytes can neither
/// start a new line nor drive the terminal. Everything else, including other non-ASCII text, is kept.
/// The escaping is idempotent: escaped text escapes to itself.
public enum TerminalText {
    /// `text` escaped; cut after `limit` characters (marked with `…`).
    public static func escape(_ text: String, limit: Int = .max) -> String {
        var out = ""
        var count = 0
        for u in text.unicodeScalars {
            if count >= limit { out += "…"; break }
            switch u.value {
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0..<0x20, 0x7F, 0x80..<0xA0: out += String(format: "\\x%02x", u.value)
            case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0x2028, 0x2029, 0xFEFF:
                out += String(format: "\\u{%04x}", u.value)
            default: out.unicodeScalars.append(u)
            }
            count += 1
        }
        return out
    }

    /// Multi-line text whose lines are already composed: each line is escaped on its own, so only the line
    /// breaks the program wrote remain.
    public static func escapeLines(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { escape(String($0)) }.joined(separator: "\n")
    }
}
