import ArgumentParser

/// A byte count on the command line: digits with an optional K, M, G or T suffix (powers of 1024).
struct ByteCount: ExpressibleByArgument, Sendable {
    let bytes: Int

    init?(argument: String) {
        var text = Substring(argument.uppercased())
        if text.hasSuffix("IB") { text = text.dropLast(2) } else if text.hasSuffix("B") { text = text.dropLast() }
        var shift = 0
        if let last = text.last, let i = "KMGT".firstIndex(of: last) {
            shift = 10 * ("KMGT".distance(from: "KMGT".startIndex, to: i) + 1)
            text = text.dropLast()
        }
        guard let n = Int(text), n >= 0, n <= Int.max >> shift else { return nil }
        bytes = n << shift
    }
}
