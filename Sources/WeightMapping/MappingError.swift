import TensorCore

/// An error of the mapping layer: a table that does not parse or check (with `file:line`), or a load that
/// fails its policy (with the load report, so the caller can still show everything that was found).
public struct MappingError: WeightsError {
    /// What went wrong, for code that must react to one situation (never match on `message`).
    public enum Kind: String, Sendable {
        /// A table that does not parse or check, or a rule that cannot apply to the file's tensors.
        case mapping
        /// `auto` found no table for the file.
        case noTableRecognises
        /// `auto` found several tables for the file.
        case ambiguousTables
        /// `--mapping NAME` names no table and no file.
        case unknownTable
        /// Two files provide different values for one key.
        case conflictingSources
        /// The load violates its policy (`report` says how).
        case policyViolation
        /// A checked value could not be set on the model.
        case cannotAssign
    }

    public var kind: Kind
    public var message: String
    /// `Mappings/vit.jax-npz.yaml:17` when the error comes from a table rule.
    public var location: String?
    public var report: LoadReport?

    public init(_ message: String, kind: Kind = .mapping, location: String? = nil, report: LoadReport? = nil) {
        self.kind = kind
        self.message = message
        self.location = location
        self.report = report
    }

    public var description: String {
        (location.map { "\($0): " } ?? "") + message
    }

    func at(_ location: String) -> MappingError {
        var e = self
        if e.location == nil { e.location = location }
        return e
    }
}
