import Foundation

extension Kernels {
    /// `nn.BatchNorm2d` in eval mode: y = (x − mean) / sqrt(var + eps) · weight + bias, per channel of [N, C, …].
    public static func batchNorm(_ x: FloatTensor, weight: FloatTensor, bias: FloatTensor,
                                 runningMean: FloatTensor, runningVar: FloatTensor, eps: Float = 1e-5,
                                 activation: Epilogue = .none) -> FloatTensor {
        precondition(x.rank >= 2, "batchNorm: expects [N, C, …], got \(x.shape)")
        let c = x.shape[1]
        precondition(weight.count == c && bias.count == c && runningMean.count == c && runningVar.count == c,
                     "batchNorm: parameters must have \(c) elements")
        let spatial = x.shape.dropFirst(2).reduce(1, *)
        let (scale, shift) = batchNormScaleShift(weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar, eps: eps)
        var out = x
        scale.withUnsafeBufferPointer { sb in shift.withUnsafeBufferPointer { hb in
            let s = SendableConstPointer(sb.baseAddress!), t = SendableConstPointer(hb.baseAddress!)
            out.data.withUnsafeMutableBufferPointer { ob in
                let o = SendablePointer(ob.baseAddress!)
                Parallel.forEachChunk(x.shape[0] * c, costPerItem: spatial) { range in
                    for plane in range {
                        let a = s.p[plane % c], b = t.p[plane % c]
                        let p = o.p + plane * spatial
                        switch activation {
                        case .none: for i in 0..<spatial { p[i] = p[i] * a + b }
                        case .relu: for i in 0..<spatial { p[i] = Swift.max(p[i] * a + b, 0) }
                        case .silu:
                            for i in 0..<spatial { p[i] = p[i] * a + b }
                            activation.apply(p, spatial)
                        }
                    }
                }
            }
        }}
        return out
    }

    /// Per-channel affine form of inference batch norm: y = x · scale + shift.
    /// Computed in Double so folding adds no error beyond the final rounding.
    public static func batchNormScaleShift(weight: FloatTensor, bias: FloatTensor, runningMean: FloatTensor,
                                           runningVar: FloatTensor, eps: Float) -> (scale: [Float], shift: [Float]) {
        let c = weight.count
        var scale = [Float](repeating: 0, count: c), shift = [Float](repeating: 0, count: c)
        for i in 0..<c {
            let s = Double(weight.data[i]) / (Double(runningVar.data[i]) + Double(eps)).squareRoot()
            scale[i] = Float(s)
            shift[i] = Float(Double(bias.data[i]) - Double(runningMean.data[i]) * s)
        }
        return (scale, shift)
    }

    /// Folds an inference batch norm into the preceding convolution (or linear) layer: returns weight′, bias′ with
    /// conv(x, weight′) + bias′ == bn(conv(x, weight) + bias). `weight` has the output channels first.
    public static func foldBatchNorm(convWeight weight: FloatTensor, convBias: FloatTensor?,
                                     bnWeight: FloatTensor, bnBias: FloatTensor,
                                     runningMean: FloatTensor, runningVar: FloatTensor,
                                     eps: Float = 1e-5) -> (weight: FloatTensor, bias: FloatTensor) {
        let cout = weight.shape[0]
        precondition(bnWeight.count == cout, "foldBatchNorm: conv has \(cout) output channels, BN \(bnWeight.count)")
        let per = weight.count / Swift.max(cout, 1)
        var w = weight
        var b = [Float](repeating: 0, count: cout)
        for o in 0..<cout {
            let s = Double(bnWeight.data[o]) / (Double(runningVar.data[o]) + Double(eps)).squareRoot()
            let base = o * per
            for i in 0..<per { w.data[base + i] = Float(Double(weight.data[base + i]) * s) }
            let cb = Double(convBias?.data[o] ?? 0)
            b[o] = Float((cb - Double(runningMean.data[o])) * s + Double(bnBias.data[o]))
        }
        return (w, FloatTensor(shape: [cout], data: b))
    }

    /// `nn.LayerNorm(dim, eps)` over the last dimension: (x − mean) / sqrt(var + eps) · weight + bias,
    /// with the biased variance as PyTorch uses. Two-pass per row, vectorised, parallel over rows.
    public static func layerNorm(_ x: FloatTensor, weight: FloatTensor, bias: FloatTensor, eps: Float) -> FloatTensor {
        normalizeRows(x, weight: weight, bias: bias, kernel: "layerNorm") { src, dst, d, w, b in
            layerNormRow(src, dst, d, w, b, eps)
        }
    }

    /// The driver every per-row normalisation shares: checks that `weight` and `bias` match the last dimension, then
    /// runs `row(src, dst, d, weight, bias)` over the rows of `x` in parallel, writing a new tensor.
    @inline(__always)
    package static func normalizeRows(_ x: FloatTensor, weight: FloatTensor, bias: FloatTensor, kernel: String,
                                      row: @escaping @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int,
                                                                UnsafePointer<Float>, UnsafePointer<Float>) -> Void) -> FloatTensor {
        let d = x.shape.last ?? 0
        precondition(d > 0 && weight.count == d && bias.count == d, "\(kernel): last dim \(d), weight \(weight.shape), bias \(bias.shape)")
        let rows = x.count / d
        return FloatTensor(shape: x.shape) { ob in
            guard rows > 0 else { return }
            let o = SendablePointer(ob.baseAddress!)
            x.data.withUnsafeBufferPointer { xb in weight.data.withUnsafeBufferPointer { wb in bias.data.withUnsafeBufferPointer { bb in
                let xp = SendableConstPointer(xb.baseAddress!), wp = SendableConstPointer(wb.baseAddress!)
                let bp = SendableConstPointer(bb.baseAddress!)
                Parallel.forEachChunk(rows, costPerItem: 4 * d) { range in
                    for r in range { row(xp.p + r * d, o.p + r * d, d, wp.p, bp.p) }
                }
            }}}
        }
    }

    /// One LayerNorm row. Sums run 8 lanes wide in Float over blocks of 64 elements and are carried in Double
    /// between blocks, so a row with a large common offset keeps its precision: the mean is exact to about
    /// 1e-7 relative, and the variance is taken about the Float-rounded mean and corrected by the rounding
    /// (Σ(x − m)² = Σ(x − m_f)² − d·(m − m_f)²).
    @inline(__always)
    static func layerNormRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ d: Int,
                             _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ eps: Float) {
        typealias V = FastMath.V
        let sr = UnsafeRawPointer(src), dr = UnsafeMutableRawPointer(dst)
        let wr = UnsafeRawPointer(w), br = UnsafeRawPointer(b)
        let body = d & ~7
        var sum: Double = 0
        var i = 0
        while i < body {
            let end = Swift.min(body, i + 64)
            var acc = V(repeating: 0)
            while i < end { acc += sr.loadUnaligned(fromByteOffset: i * 4, as: V.self); i += 8 }
            sum += Double(acc.sum())
        }
        for j in body..<d { sum += Double(src[j]) }
        let meanD = sum / Double(d)
        let mean = Float(meanD)
        let mv = V(repeating: mean)
        var sq: Double = 0
        i = 0
        while i < body {
            let end = Swift.min(body, i + 64)
            var acc = V(repeating: 0)
            while i < end { let t = sr.loadUnaligned(fromByteOffset: i * 4, as: V.self) - mv; acc += t * t; i += 8 }
            sq += Double(acc.sum())
        }
        for j in body..<d { let t = Double(src[j] - mean); sq += t * t }
        let shift = meanD - Double(mean)
        let variance = Swift.max(0, sq / Double(d) - shift * shift)
        let inv = Float(1 / (variance + Double(eps)).squareRoot())
        let iv = V(repeating: inv)
        i = 0
        while i < body {
            let t = (sr.loadUnaligned(fromByteOffset: i * 4, as: V.self) - mv) * iv
            let y = t * wr.loadUnaligned(fromByteOffset: i * 4, as: V.self) + br.loadUnaligned(fromByteOffset: i * 4, as: V.self)
            dr.storeBytes(of: y, toByteOffset: i * 4, as: V.self)
            i += 8
        }
        for j in body..<d { dst[j] = (src[j] - mean) * inv * w[j] + b[j] }
    }
}
