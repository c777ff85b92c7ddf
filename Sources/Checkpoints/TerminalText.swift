import Foundation

/// Text from a file (tensor names, metadata, member names, global names) made safe for a terminal: every
/// control character (C0, DEL, C1), and the bidirectional overrides and isolates that reorder what a reader
/// sees, is written as a visible escape (`\n`, `\r`, `\t`, `\x1b`, `\u{202e}`), so hostile bytes can neither
/// start a new line nor drive the terminal. Everything else, including other non-ASCII text, is kept.
/// The escaping is idempotent: escaped text escapes to itself.
public enum TerminalText {
    /// `text` escaped; cut (and marked with `…`) where the escaped text would pass `limit` UTF-8 bytes, so a limit
    /// bounds what reaches the terminal however many escapes or multi-byte characters the text holds.
    public static func escape(_ text: String, limit: Int = .max) -> String {
        var out = ""
        var bytes = 0
        for u in text.unicodeScalars {
            let piece: String
            switch u.value {
            case 0x0A: piece = "\\n"
            case 0x0D: piece = "\\r"
            case 0x09: piece = "\\t"
            case 0..<0x20, 0x7F, 0x80..<0xA0: piece = String(format: "\\x%02x", u.value)
            case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0x2028, 0x2029, 0xFEFF:
                piece = String(format: "\\u{%04x}", u.value)
            default: piece = String(u)
            }
            let n = piece.utf8.count
            if bytes > limit - n { out += "…"; break }
            out += piece
            bytes += n
        }
        return out
    }

    /// Multi-line text whose lines are already composed: each line is escaped on its own, so only the line
    /// breaks the program wrote remain.
    public static func escapeLines(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { escape(String($0)) }.joined(separator: "\n")
    }
}
