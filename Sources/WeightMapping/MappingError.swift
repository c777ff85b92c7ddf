/// An error of the mapping layer: a table that does not parse or check (with `file:line`), or a load that
/// fails its policy (with the load report, so the caller can still show everything that was found).
public struct MappingError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// `Mappings/vit.jax-npz.yaml:17` when the error comes from a table rule.
    public var location: String?
    public var report: LoadReport?

    public init(_ message: String, location: String? = nil, report: LoadReport? = nil) {
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
