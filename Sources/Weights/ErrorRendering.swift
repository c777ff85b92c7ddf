/// The one renderer for errors shown to users: a single line, whatever bytes a file put into names or messages
/// (control characters and bidirectional overrides are escaped by `TerminalText`), built from the error's own
/// `description` — `WeightsError` types name the file, member or offset, key, and what was expected vs found.
public func renderError(_ error: any Error) -> String {
    TerminalText.escape((error as? any WeightsError)?.description ?? String(describing: error))
}
