/// The protocol every error type of the package conforms to (`CheckpointError`, `MappingError`, `ModelError`,
/// `VerificationError`): structured fields or cases for code to inspect, and a one-line `description` naming the
/// file, member or byte offset, key, and what was expected vs found. Code branches on cases and fields, never
/// on the text; `Weights.render(_:)` is the one renderer.
public protocol WeightsError: Error, CustomStringConvertible, Sendable {}
