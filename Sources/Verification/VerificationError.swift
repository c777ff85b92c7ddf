import TensorCore

/// Errors of the verification layer: a reference file that does not fit the format or the model. Each case names
/// the reference file and the stored key.
public enum VerificationError: WeightsError, Equatable {
    /// No `input` / `input.<name>` tensor at all.
    case noInputs(file: String, found: [String])
    /// No `output` / `output.0` tensor.
    case noOutputs(file: String)
    /// Both `input` and `input.<name>` (or `output` and `output.<i>`).
    case mixedForms(file: String, key: String, form: String)
    /// `output.<i>` numbering with a gap.
    case outputGap(file: String, key: String, missing: String)
    /// An output stored with a non-floating dtype.
    case outputDType(file: String, key: String, found: DType)
    /// A model input the reference does not store.
    case missingInput(file: String, key: String, model: String, spec: String, stored: [String])
    /// A stored input of the wrong kind (float for a token input, …).
    case inputDType(file: String, key: String, model: String, spec: String, found: DType, shape: [Int])
    /// A stored input value the model rejects (a token id outside the vocabulary).
    case invalidInputValue(file: String, key: String, reason: String)
    /// The model has another number of outputs than the reference stores.
    case outputCount(file: String, model: String, expected: [String], stored: [String])
    /// An output or activation whose shape differs from the reference.
    case shapeMismatch(file: String, key: String, what: String, model: [Int], reference: [Int])

    public var description: String {
        switch self {
        case let .noInputs(file, found):
            return "\(file): reference has no 'input' or 'input.<name>' tensor (it has: \(found.prefix(8).joined(separator: ", ")))"
        case let .noOutputs(file):
            return "\(file): reference has no 'output' or 'output.0' tensor"
        case let .mixedForms(file, key, form):
            return "\(file): key '\(key)': reference has both '\(form)' and '\(form).<…>' tensors; use one form"
        case let .outputGap(file, key, missing):
            return "\(file): key '\(key)': reference outputs must be numbered output.0, output.1, … without gaps; '\(missing)' is missing"
        case let .outputDType(file, key, found):
            return "\(file): key '\(key)': reference output is \(found.rawValue); expected a floating tensor"
        case let .missingInput(file, key, model, spec, stored):
            return "\(file): key '\(key)': model \(model) needs input \(spec) stored as '\(key)'; the reference has \(stored.joined(separator: ", "))"
        case let .inputDType(file, key, model, spec, found, shape):
            return "\(file): key '\(key)': input is \(found.rawValue) \(shape); model \(model) expects \(spec)"
        case let .invalidInputValue(file, key, reason):
            return "\(file): key '\(key)': \(reason)"
        case let .outputCount(file, model, expected, stored):
            return "\(file): model \(model) has \(expected.count) output(s) (\(expected.joined(separator: ", "))) but the reference stores \(stored.count) (\(stored.joined(separator: ", ")))"
        case let .shapeMismatch(file, key, what, model, reference):
            return "\(file): key '\(key)': model \(what) has shape \(model) but the reference has \(reference)"
        }
    }
}
