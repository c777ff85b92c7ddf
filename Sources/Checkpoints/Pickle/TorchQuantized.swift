import TensorCore

/// How torch quantized tensors come out (README "Quantized tensors"): the integer data under the tensor's own name,
/// in the plain integer dtype of its storage, and the quantizer's parameters beside it, named after the torch methods
/// that return them:
///
/// | name | per-tensor (`quantize_per_tensor`) | per-channel (`quantize_per_channel`) |
/// |---|---|---|
/// | `<name>` | `int_repr()`: int8 (qint8), uint8 (quint8), int32 (qint32) | same |
/// | `<name>.q_scale` | `q_scale()`, float64, 0-d | `q_per_channel_scales()`, float64 [C] |
/// | `<name>.q_zero_point` | `q_zero_point()`, int64, 0-d | `q_per_channel_zero_points()`, [C] (int64; float for float_qparams) |
/// | `<name>.q_axis` | — | `q_per_channel_axis()`, int64, 0-d |
///
/// The `q_` prefix keeps them apart from the `scale` / `zero_point` entries quantized modules keep in their own
/// state_dicts (`conv.scale` beside `conv.weight`). Packed sub-byte kinds (quint4x2, quint2x4) and unknown schemes
/// stay per-tensor refusals.
enum QuantizedNaming {
    static let scale = "q_scale"
    static let zeroPoint = "q_zero_point"
    static let axis = "q_axis"

    /// Storage type → (integer dtype of the data, torch's quantized dtype name).
    static let storageDTypes: [String: (DType, String)] = [
        "QInt8Storage": (.int8, "qint8"), "QUInt8Storage": (.uint8, "quint8"), "QInt32Storage": (.int32, "qint32"),
    ]
    /// torch dtype names (`_rebuild_tensor_v3`-style untyped storages name the dtype) → integer dtype.
    static let dtypeNames: [String: DType] = ["qint8": .int8, "quint8": .uint8, "qint32": .int32]
}

extension TorchGlobals {
    /// `_rebuild_qtensor(storage, storage_offset, size, stride, quantizer_params, requires_grad, hooks)` with
    /// `quantizer_params` = `(torch.per_tensor_affine, scale, zero_point)` or
    /// `(torch.per_channel_affine[_float_qparams], scales, zero_points, axis)`.
    static func rebuildQuantized(_ args: [PickleValue], function: String, machine: PickleMachine) -> PickleValue {
        func refuse(_ why: String) -> PickleValue {
            machine.unsupportedTensorsBuilt += 1
            return .unsupportedTensor("a quantized tensor \(why) (rebuilt by \(function))")
        }
        guard args.count >= 5 else { return .invalid("malformed \(function) call: \(args.count) arguments, expected at least 5") }
        guard case .storage(let storage) = args[0] else {
            return .invalid("malformed \(function) call: first argument is \(args[0].kindName), not a storage")
        }
        guard let offset = args[1].intValue else { return .invalid("malformed \(function) call: storage offset is \(args[1].kindName), not an int") }
        guard let size = intTuple(args[2]) else { return .invalid("malformed \(function) call: size is \(args[2].kindName), not a tuple of ints") }
        guard let stride = intTuple(args[3]) else { return .invalid("malformed \(function) call: stride is \(args[3].kindName), not a tuple of ints") }
        let typeName = storage.typeName.split(separator: ".").last.map(String.init) ?? storage.typeName
        guard let (dtype, qname) = QuantizedNaming.storageDTypes[typeName] else {
            return refuse("stored as \(TorchGlobals.describeStorageType(storage))")
        }
        guard let params = args[4].sequenceItems, let first = params.first, case .global(let schemeGlobal) = first else {
            return .invalid("malformed \(function) call: quantizer parameters are \(args[4].kindName), not (scheme, …)")
        }
        let scheme = canonical(schemeGlobal)
        guard scheme.module == "torch" else { return refuse("with quantization scheme \(scheme.qualifiedName)") }
        let intStorage = TorchStorageRef(key: storage.key, typeName: storage.typeName, dtype: dtype, elementSize: dtype.byteSize,
                                         numel: storage.numel, location: storage.location, viewOffset: storage.viewOffset,
                                         rootNumel: storage.rootNumel)
        var companions: [(suffix: String, value: TorchQuantizedRef.Companion)] = []
        let schemeText: String
        switch scheme.name {
        case "per_tensor_affine", "per_tensor_symmetric":
            guard params.count == 3 else { return .invalid("malformed \(function) call: \(scheme.name) with \(params.count - 1) parameters, expected 2") }
            let scale: Double
            switch params[1] {
            case .float(let d): scale = d
            case .int(let i): scale = Double(i)
            default: return .invalid("malformed \(function) call: scale is \(params[1].kindName), not a float")
            }
            guard let zero = params[2].intValue else { return .invalid("malformed \(function) call: zero point is \(params[2].kindName), not an int") }
            companions = [(QuantizedNaming.scale, .scalar(.float64, bytes(scale.bitPattern.littleEndian))),
                          (QuantizedNaming.zeroPoint, .scalar(.int64, bytes(zero.littleEndian)))]
            schemeText = "per tensor"
        case "per_channel_affine", "per_channel_symmetric", "per_channel_affine_float_qparams":
            guard params.count == 4 else { return .invalid("malformed \(function) call: \(scheme.name) with \(params.count - 1) parameters, expected 3") }
            guard case .tensor(let scales) = params[1] else { return .invalid("malformed \(function) call: scales are \(params[1].kindName), not a tensor") }
            guard case .tensor(let zeros) = params[2] else { return .invalid("malformed \(function) call: zero points are \(params[2].kindName), not a tensor") }
            guard let axis = params[3].intValue else { return .invalid("malformed \(function) call: axis is \(params[3].kindName), not an int") }
            guard axis >= 0, axis < Int64(size.count) else { return .invalid("malformed \(function) call: axis \(axis) of a \(size.count)-d tensor") }
            companions = [(QuantizedNaming.scale, .tensor(scales)), (QuantizedNaming.zeroPoint, .tensor(zeros)),
                          (QuantizedNaming.axis, .scalar(.int64, bytes(axis.littleEndian)))]
            schemeText = "per channel, axis \(axis)"
        default:
            return refuse("with quantization scheme torch.\(scheme.name)")
        }
        let suffixes = companions.map { ".\($0.suffix)" }.joined(separator: ", ")
        let note = " (\(qname), \(schemeText): integer data; quantizer in \(suffixes))"
        machine.tensorsBuilt += 1
        let data = TorchTensorRef(storage: intStorage, storageOffset: offset, size: size, stride: stride, note: note)
        return .quantizedTensor(TorchQuantizedRef(data: data, companions: companions))
    }

    private static func bytes<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
}
