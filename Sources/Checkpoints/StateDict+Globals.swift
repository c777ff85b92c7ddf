extension StateDict {
    /// `N global(s) outside the allowlist: a.b, c.d` (at most 20 names, then a count), or nil when there are none.
    public var neutralisedGlobalsSummary: String? {
        guard !neutralisedGlobals.isEmpty else { return nil }
        let n = neutralisedGlobals.count
        let shown = neutralisedGlobals.prefix(20).joined(separator: ", ") + (n > 20 ? ", … (\(n) in all)" : "")
        return "the pickle names \(n) global\(n == 1 ? "" : "s") outside the allowlist: \(shown)"
    }

    /// True when every neutralised global lies in the `torch.` namespace (the layer classes of a pickled whole
    /// module): worth a note, not a warning.
    public var neutralisedGlobalsAreTorchOnly: Bool {
        neutralisedGlobals.allSatisfy { $0.hasPrefix("torch.") }
    }

    /// With `strict`, throws when the pickle named globals outside the allowlist; otherwise returns the one-line
    /// notice to show (nil when there is nothing to say).
    public func checkNeutralisedGlobals(strict: Bool) throws -> String? {
        guard let summary = neutralisedGlobalsSummary else { return nil }
        if strict { throw CheckpointError("refusing (strict): \(summary)", file: file) }
        return "\(file): \(summary); they were replaced by inert placeholders (nothing imported or run)"
    }
}
