extension Kernels {
    /// `nn.Linear` forward: y = x · Wᵀ + b over the last dimension of x ([…, in] → […, out]); weight is [out, in].
    /// The bias is broadcast into the output first and accumulated by the GEMM (beta = 1).
    public static func linear(_ x: FloatTensor, weight: FloatTensor, bias: FloatTensor? = nil) -> FloatTensor {
        precondition(weight.rank == 2, "linear: weight must be [out, in], got \(weight.shape)")
        let (outF, inF) = (weight.shape[0], weight.shape[1])
        precondition(x.shape.last == inF, "linear: input \(x.shape) does not end in \(inF)")
        if let bias { precondition(bias.count == outF, "linear: bias \(bias.shape) for \(outF) outputs") }
        let rows = x.count / Swift.max(inF, 1)
        var shape = x.shape
        shape[shape.count - 1] = outF
        return FloatTensor(shape: shape) { ob in
            guard rows > 0, outF > 0 else { return }
            let out = ob.baseAddress!
            if let bias {
                bias.data.withUnsafeBufferPointer { bb in
                    for r in 0..<rows { (out + r * outF).update(from: bb.baseAddress!, count: outF) }
                }
            }
            x.data.withUnsafeBufferPointer { xb in weight.data.withUnsafeBufferPointer { wb in
                if inF == 0 {
                    if bias == nil { out.update(repeating: 0, count: rows * outF) }
                    return
                }
                Gemm.sgemm(transA: false, transB: true, m: rows, n: outF, k: inF,
                           a: xb.baseAddress!, lda: inF, b: wb.baseAddress!, ldb: inF,
                           beta: bias == nil ? 0 : 1, c: out, ldc: outF)
            }}
        }
    }
}
