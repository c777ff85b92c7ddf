/// Path text split by hand: swift-corelibs-foundation's `NSString.deletingLastPathComponent` traps (SIGILL) on
/// some one-character paths (`weights convert x -o o` died in it), so outputs and shard paths use these.
package enum PathText {
    /// `path` without trailing slashes (the root stays `/`).
    static func trimmed(_ path: String) -> Substring {
        var s = Substring(path)
        while s.count > 1, s.hasSuffix("/") { s = s.dropLast() }
        return s
    }

    /// The folder part, as `deletingLastPathComponent`: "" for a bare name, "/" for a name at the root.
    public static func parent(_ path: String) -> String {
        let s = trimmed(path)
        guard let slash = s.lastIndex(of: "/") else { return "" }
        if slash == s.startIndex { return "/" }
        return String(trimmed(String(s[..<slash])))
    }

    /// The last component, as `lastPathComponent` ("/" for the root).
    public static func lastComponent(_ path: String) -> String {
        let s = trimmed(path)
        if s == "/" { return "/" }
        guard let slash = s.lastIndex(of: "/") else { return String(s) }
        return String(s[s.index(after: slash)...])
    }

    /// `name` inside `folder` ("" meaning the current folder).
    public static func join(_ folder: String, _ name: String) -> String {
        folder.isEmpty ? name : folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }
}
