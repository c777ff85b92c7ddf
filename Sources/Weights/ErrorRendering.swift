/// The one renderer for errors shown to users: a single line, whatever bytes a file put into names or messages
/// (control characters are escaped), built from the error's own `description` — `WeightsError` types name the file,
/// member or offset, key, and what was expected vs found.
public func renderError(_ error: any Error) -> String {
    let text = (error as? any WeightsError)?.description ?? String(describing: error)
    var out = ""
    for u in text.unicodeScalars {
        switch u.value {
        case 0x0A: out += "\\n"
        case 0x0D: out += "\\r"
        case 0x09: out += "\\t"
        case 0..<0x20, 0x7F, 0x80..<0xA0: out += "\\x" + String(u.value, radix: 16).leftPadded(to: 2)
        default: out.unicodeScalars.append(u)
        }
    }
    return out
}

private extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
