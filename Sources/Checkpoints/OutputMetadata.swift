/// Limits on the metadata a writer carries into its output, so that every output is readable by every reader.
///
/// Policy: a metadata entry whose key and value together exceed `maxEntryBytes` (64 KiB, the size of an HDF5
/// compact attribute) is not carried, nor are entries past `maxTotalBytes` (16 MiB) in total; the caller gets
/// the list to report (`fit`). Writers refuse metadata that breaks these limits (`check`), and the safetensors
/// writer refuses, before writing any byte, a header that would exceed the 100 MB every safetensors reader
/// (ours, the Rust crate, Python's) accepts — which only tensor names can still cause once metadata fits.
public enum OutputMetadata {
    public static let maxEntryBytes = 64 << 10
    public static let maxTotalBytes = 16 << 20

    /// An entry left out of an output, and why.
    public struct Dropped: Sendable, Equatable, CustomStringConvertible {
        public let key: String
        public let bytes: Int
        /// True when the entry alone is over `maxEntryBytes`; false when the total ran out.
        public let tooLarge: Bool
        public var description: String { "'\(key)' (\(bytes) bytes)" }
    }

    /// The entries of `metadata` that fit the limits, taking the keys in `first` before the others (which go in
    /// key order), and the entries left out.
    public static func fit(_ metadata: [String: String], first: [String] = []) -> (kept: [String: String], dropped: [Dropped]) {
        var kept: [String: String] = [:]
        var dropped: [Dropped] = []
        var total = 0
        let firstSet = Set(first)
        let order = first.filter { metadata[$0] != nil } + metadata.keys.filter { !firstSet.contains($0) }.sorted()
        for key in order {
            guard let value = metadata[key] else { continue }
            let n = key.utf8.count + value.utf8.count
            if n > maxEntryBytes {
                dropped.append(Dropped(key: key, bytes: n, tooLarge: true))
            } else if total + n > maxTotalBytes {
                dropped.append(Dropped(key: key, bytes: n, tooLarge: false))
            } else {
                kept[key] = value
                total += n
            }
        }
        return (kept, dropped)
    }

    /// One line for a non-empty `dropped` list: how many, which (the first few), and the limits.
    public static func summary(_ dropped: [Dropped]) -> String {
        let shown = dropped.prefix(5).map(\.description).joined(separator: ", ")
        return "\(dropped.count) metadata entr\(dropped.count == 1 ? "y" : "ies") not carried into the output: \(shown)"
            + (dropped.count > 5 ? ", …" : "")
            + " (limits: \(maxEntryBytes) bytes per entry, \(maxTotalBytes) bytes in all)"
    }

    /// Throws unless `metadata` is within the limits (what `fit` returns always is).
    static func check(_ metadata: [String: String], file: String) throws {
        var total = 0
        for (key, value) in metadata {
            let n = key.utf8.count + value.utf8.count
            guard n <= maxEntryBytes else {
                throw CheckpointError("metadata entry of \(n) bytes exceeds the \(maxEntryBytes)-byte limit; nothing written", file: file, key: key)
            }
            total += n
        }
        guard total <= maxTotalBytes else {
            throw CheckpointError("metadata of \(total) bytes exceeds the \(maxTotalBytes)-byte limit; nothing written", file: file)
        }
    }
}
