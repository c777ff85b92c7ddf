import Dispatch
import Foundation

/// 2-D convolution hyper-parameters, as `nn.Conv2d` takes them (symmetric per axis).
public struct Conv2dOptions: Sendable, Equatable {
    public var stride: (h: Int, w: Int)
    public var padding: (h: Int, w: Int)
    public var dilation: (h: Int, w: Int)
    public var groups: Int

    public init(stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1) {
        self.stride = (stride, stride)
        self.padding = (padding, padding)
        self.dilation = (dilation, dilation)
        self.groups = groups
    }

    public init(stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int) = (1, 1), groups: Int = 1) {
        self.stride = (stride.0, stride.1)
        self.padding = (padding.0, padding.1)
        self.dilation = (dilation.0, dilation.1)
        self.groups = groups
    }

    public static func == (a: Conv2dOptions, b: Conv2dOptions) -> Bool {
        a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation && a.groups == b.groups
    }

    /// Output size along one axis (PyTorch's formula).
    @inlinable
    public static func outputSize(_ input: Int, kernel: Int, stride: Int, padding: Int, dilation: Int) -> Int {
        (input + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1
    }
}

/// Activation applied in a kernel's epilogue (after bias and residual).
public enum Epilogue: Sendable {
    case none, relu, silu

    /// p[0..<count] = act(p[i]) in place (8 lanes at a time for SiLU). NaN stays NaN under ReLU, as in PyTorch.
    @inline(__always)
    func apply(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        switch self {
        case .none: return
        case .relu: for i in 0..<count { p[i] = p[i] < 0 ? 0 : p[i] }
        case .silu: FastMath.apply(p, count, FastMath.silu)
        }
    }

    /// The activation of one value (scalar tails).
    @inline(__always)
    func callAsFunction(_ v: Float) -> Float {
        switch self {
        case .none: return v
        case .relu: return Swift.max(v, 0)
        case .silu: return v / (1 + Foundation.exp(-v))
        }
    }
}

/// A convolution prepared for repeated forward passes: its weight, bias and options, plus the transformed weights
/// a faster algorithm needs (Winograd), built once on first use. Thread-safe; layers hold one per folded weight.
package final class Conv2dPlan: @unchecked Sendable {
    public let weight: FloatTensor
    public let bias: FloatTensor?
    public let options: Conv2dOptions
    private let winograd = DerivedCache<WinogradWeights>()

    public init(weight: FloatTensor, bias: FloatTensor? = nil, options: Conv2dOptions = Conv2dOptions()) {
        precondition(weight.rank == 4, "Conv2dPlan: expects a 4-D weight, got \(weight.shape)")
        if let bias { precondition(bias.count == weight.shape[0], "Conv2dPlan: bias \(bias.shape) for weight \(weight.shape)") }
        self.weight = weight; self.bias = bias; self.options = options
    }

    var winogradWeights: WinogradWeights { winograd.get { WinogradWeights(weight) } }
}

extension Kernels {
    /// `conv2d` with a prepared plan: picks the algorithm from the shapes — Winograd F(4×4, 3×3) for 3×3 stride-1
    /// convolutions on maps large enough to fill its tiles, otherwise im2col + GEMM.
    public static func conv2d(_ x: FloatTensor, plan: Conv2dPlan, residual: FloatTensor? = nil,
                              activation: Epilogue = .none) -> FloatTensor {
        let w = plan.weight, o = plan.options
        if x.rank == 4 && x.shape[1] == w.shape[1] && useWinograd(input: x.shape, weight: w.shape, options: o) {
            let outShape = [x.shape[0], w.shape[0], x.shape[2] + 2 * o.padding.h - 2, x.shape[3] + 2 * o.padding.w - 2]
            if let residual { precondition(residual.shape == outShape, "conv2d: residual \(residual.shape) vs output \(outShape)") }
            return conv2dWinograd(x, weights: plan.winogradWeights, bias: plan.bias, padding: o.padding,
                                  residual: residual, activation: activation)
        }
        return conv2d(x, weight: w, bias: plan.bias, options: o, residual: residual, activation: activation)
    }

    /// Winograd pays when the 4×4 tiles are mostly inside the output and there are enough of them for the GEMMs.
    static func useWinograd(input: [Int], weight: [Int], options o: Conv2dOptions) -> Bool {
        guard weight[2] == 3 && weight[3] == 3 && o.stride == (1, 1) && o.dilation == (1, 1) && o.groups == 1,
              weight[0] >= 8 && weight[1] >= 8 else { return false }
        let ho = input[2] + 2 * o.padding.h - 2, wo = input[3] + 2 * o.padding.w - 2
        guard ho >= 4 && wo >= 4 else { return false }
        let tiles = input[0] * ((ho + 3) / 4) * ((wo + 3) / 4)
        return tiles >= 16
    }
}

extension Kernels {
    /// `nn.Conv2d` forward: x [N, Cin, H, W], weight [Cout, Cin/groups, kh, kw], bias [Cout] or nil.
    /// Optional fused epilogue: `out = act(conv(x) + bias + residual)` with `residual` shaped like the output.
    ///
    /// Grouped convolutions with a small per-group inner dimension (depthwise ones) are computed directly
    /// (`conv2dDirect`). Otherwise: im2col (parallel over rows) then one GEMM per group, split over the workers (`splitGemm`); a
    /// 1×1, stride-1, unpadded convolution is a plain GEMM on the input. Small feature maps batch several images into
    /// one GEMM; large ones are unfolded and multiplied in blocks of output rows (`conv2dRowBlocks`). The residual is
    /// copied into the output first and accumulated (GEMM beta = 1, or in the scatter).
    public static func conv2d(_ x: FloatTensor, weight: FloatTensor, bias: FloatTensor? = nil,
                              options o: Conv2dOptions = Conv2dOptions(),
                              residual: FloatTensor? = nil, activation: Epilogue = .none) -> FloatTensor {
        precondition(x.rank == 4 && weight.rank == 4, "conv2d: expects 4-D input and weight, got \(x.shape), \(weight.shape)")
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cinG, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let g = o.groups
        precondition(g >= 1 && cin % g == 0 && cout % g == 0 && cinG == cin / g,
                     "conv2d: input \(x.shape) / weight \(weight.shape) do not fit groups=\(g)")
        if let bias { precondition(bias.count == cout, "conv2d: bias \(bias.shape) for \(cout) output channels") }
        let ho = Conv2dOptions.outputSize(h, kernel: kh, stride: o.stride.h, padding: o.padding.h, dilation: o.dilation.h)
        let wo = Conv2dOptions.outputSize(w, kernel: kw, stride: o.stride.w, padding: o.padding.w, dilation: o.dilation.w)
        precondition(ho > 0 && wo > 0, "conv2d: output would be empty for input \(x.shape), kernel \(kh)×\(kw)")
        let outShape = [n, cout, ho, wo]
        if let residual { precondition(residual.shape == outShape, "conv2d: residual \(residual.shape) vs output \(outShape)") }
        if useDirectConv(groups: g, inner: cinG * kh * kw) {
            return conv2dDirect(x, weight: weight, bias: bias, options: o, ho: ho, wo: wo, residual: residual, activation: activation)
        }

        let coutG = cout / g
        let kDim = cinG * kh * kw          // GEMM inner dimension per group
        let spatial = ho * wo
        let isPointwise = kh == 1 && kw == 1 && o.stride == (1, 1) && o.padding == (0, 0)

        // Small feature maps make thin GEMMs (N = ho·wo, e.g. 49 in ResNet's last stage); with a batch, several
        // images share one GEMM of N = images·ho·wo, and the result is scattered back to NCHW.
        let imagesPerGemm = isPointwise ? 1 : Swift.max(1, Swift.min(n, (1024 + spatial - 1) / spatial))
        let cols = imagesPerGemm * spatial
        // An unfolded matrix larger than the caches (e.g. the 7×7 stem: 147 × 12544) is better made and used in
        // blocks of output rows, one block per worker at a time.
        if !isPointwise && cin * kh * kw * cols >= rowBlockThreshold,
           let rowsPerBlock = rowBlockHeight(batch: n, ho: ho, wo: wo, unfoldedRows: cin * kh * kw) {
            return conv2dRowBlocks(x, weight: weight, bias: bias, options: o, ho: ho, wo: wo, rowsPerBlock: rowsPerBlock,
                                   residual: residual, activation: activation)
        }

        var out = residual ?? FloatTensor(shape: outShape, uninitialized: { _ in })
        let beta: Float = residual == nil ? 0 : 1
        let colCount = isPointwise ? 0 : cin * kh * kw * cols
        var col = [Float](unsafeUninitializedCapacity: colCount) { _, c in c = colCount }
        let tmpCount = imagesPerGemm > 1 ? cout * cols : 0
        var tmp = [Float](unsafeUninitializedCapacity: tmpCount) { _, c in c = tmpCount }

        x.data.withUnsafeBufferPointer { xb in
        weight.data.withUnsafeBufferPointer { wb in
        col.withUnsafeMutableBufferPointer { cb in
        tmp.withUnsafeMutableBufferPointer { tb in
        out.data.withUnsafeMutableBufferPointer { ob in
            var first = 0
            while first < n {
                let count = Swift.min(imagesPerGemm, n - first)
                let width = count * spatial          // GEMM N for this chunk
                let bMatrix: UnsafePointer<Float>
                if isPointwise {
                    bMatrix = xb.baseAddress! + first * cin * h * w
                } else {
                    for j in 0..<count {
                        im2col(xb.baseAddress! + (first + j) * cin * h * w, channels: cin, height: h, width: w, kh: kh, kw: kw,
                               options: o, ho: ho, wo: wo, into: cb.baseAddress! + j * spatial, rowStride: width)
                    }
                    bMatrix = UnsafePointer(cb.baseAddress!)
                }
                // Batched chunks go through `tmp` ([Cout, images·spatial]); single images straight into the output.
                let cBase = imagesPerGemm > 1 ? tb.baseAddress! : ob.baseAddress! + first * cout * spatial
                for grp in 0..<g {
                    splitGemm(m: coutG, n: width, k: kDim,
                               a: wb.baseAddress! + grp * coutG * kDim, lda: kDim,
                               b: bMatrix + grp * kDim * width, ldb: width,
                               beta: imagesPerGemm > 1 ? 0 : beta,
                               c: cBase + grp * coutG * width, ldc: width)
                }
                if imagesPerGemm > 1 {
                    let src = SendableConstPointer(UnsafePointer(tb.baseAddress!))
                    let dst = SendablePointer(ob.baseAddress! + first * cout * spatial)
                    let accumulate = residual != nil
                    Parallel.forEachChunk(count * cout, costPerItem: spatial) { range in
                        for plane in range {      // plane = (image j, channel c) of the chunk
                            let j = plane / cout, ch = plane % cout
                            let s = src.p + ch * width + j * spatial, d = dst.p + plane * spatial
                            if accumulate { for i in 0..<spatial { d[i] += s[i] } } else { d.update(from: s, count: spatial) }
                        }
                    }
                }
                first += count
            }
            applyChannelEpilogue(ob.baseAddress!, batch: n, channels: cout, spatial: spatial, bias: bias, activation: activation)
        }}}}}
        return out
    }

    /// Unfolded-matrix size (floats) from which `conv2d` works in row blocks: ~2 MB, beyond a core's L2.
    static let rowBlockThreshold = 1 << 19

    /// Output rows per block for `conv2dRowBlocks`, or nil when the map is too small to cut into blocks of at least
    /// 128 columns for every worker. Blocks aim at ~1 MB of unfolded input (L2-sized) and at least two per worker.
    static func rowBlockHeight(batch n: Int, ho: Int, wo: Int, unfoldedRows: Int) -> Int? {
        let workers = Parallel.workers
        if workers < 2 { return nil }
        var rows = Swift.max(1, Swift.min(ho, (1 << 18) / Swift.max(1, unfoldedRows) / wo))
        let minBlocks = 2 * workers
        if n * ((ho + rows - 1) / rows) < minBlocks {
            let perImage = (minBlocks + n - 1) / n
            rows = Swift.max(1, ho / perImage)
        }
        return rows * wo >= 128 ? rows : nil
    }

    /// im2col convolution in blocks of output rows: each worker unfolds one block of one image into its own
    /// (cache-sized) buffer, multiplies it with a single-threaded GEMM straight into the output, and applies the
    /// epilogue while the block is still in cache.
    static func conv2dRowBlocks(_ x: FloatTensor, weight: FloatTensor, bias: FloatTensor?, options o: Conv2dOptions,
                                ho: Int, wo: Int, rowsPerBlock: Int, residual: FloatTensor?, activation: Epilogue) -> FloatTensor {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cinG, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let g = o.groups, coutG = cout / g, kDim = cinG * kh * kw
        let spatial = ho * wo
        let blocksPerImage = (ho + rowsPerBlock - 1) / rowsPerBlock
        let blocks = n * blocksPerImage
        let workers = Parallel.workers
        let bufferCount = workers * cin * kh * kw * rowsPerBlock * wo
        var buffer = [Float](unsafeUninitializedCapacity: bufferCount) { _, c in c = bufferCount }
        var out = residual ?? FloatTensor(shape: [n, cout, ho, wo], uninitialized: { _ in })
        let beta: Float = residual == nil ? 0 : 1
        let biasData = bias?.data ?? []
        x.data.withUnsafeBufferPointer { xb in
        weight.data.withUnsafeBufferPointer { wb in
        biasData.withUnsafeBufferPointer { bb in
        buffer.withUnsafeMutableBufferPointer { cb in
        out.data.withUnsafeMutableBufferPointer { ob in
            let xs = SendableConstPointer(xb.baseAddress!), ws = SendableConstPointer(wb.baseAddress!)
            let bs = bias == nil ? nil : SendableConstPointer(bb.baseAddress!)
            let cs = SendablePointer(cb.baseAddress!), os = SendablePointer(ob.baseAddress!)
            Gemm.withSingleThreadedBLAS {
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    let col = cs.p + worker * cin * kh * kw * rowsPerBlock * wo
                    var block = worker
                    while block < blocks {
                        let b = block / blocksPerImage, first = (block % blocksPerImage) * rowsPerBlock
                        let rows = first..<Swift.min(ho, first + rowsPerBlock)
                        let width = rows.count * wo
                        im2col(xs.p + b * cin * h * w, channels: cin, height: h, width: w, kh: kh, kw: kw, options: o,
                               ho: ho, wo: wo, into: col, outputRows: rows, parallel: false)
                        let c = os.p + b * cout * spatial + first * wo
                        for grp in 0..<g {
                            Gemm.sgemm(m: coutG, n: width, k: kDim, a: ws.p + grp * coutG * kDim, lda: kDim,
                                       b: col + grp * kDim * width, ldb: width, beta: beta,
                                       c: c + grp * coutG * spatial, ldc: spatial)
                        }
                        if bs != nil || activation != .none {
                            for ch in 0..<cout { addBias(c + ch * spatial, width, bs?.p[ch] ?? 0, activation) }
                        }
                        block += workers
                    }
                }
            }
        }}}}}
        return out
    }

    /// C = A·B + beta·C (row-major, no transposes) split over the `Parallel` workers, each block one single-threaded
    /// OpenBLAS call: by columns when B is wide, else by rows of A. Cheaper than OpenBLAS's own threading for the
    /// mid-sized GEMMs of a convolution, and keeps OpenBLAS's threads from spinning against the kernels' workers.
    static func splitGemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                          beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if n >= 64 * Parallel.workers {
            Gemm.sgemmColumnBlocks(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, minimumWork: 1 << 19)
        } else {
            Gemm.sgemmRowBlocks(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, minimumWork: 1 << 19)
        }
    }

    /// Unfolds one image [C, H, W] into a [C·kh·kw, ho·wo] matrix (zero padding), rows in (c, i, j) order,
    /// matching the weight layout [Cout, C, kh, kw]; rows are `rowStride` apart (default ho·wo, larger when several
    /// images share the matrix side by side). Parallel over rows.
    /// `outputRows` limits the columns to those output rows (default all); `parallel: false` stays on this thread.
    static func im2col(_ x: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int, kh: Int, kw: Int,
                       options o: Conv2dOptions, ho: Int, wo: Int, into col: UnsafeMutablePointer<Float>, rowStride: Int? = nil,
                       outputRows: Range<Int>? = nil, parallel: Bool = true) {
        let ohRange = outputRows ?? 0..<ho
        let ld = rowStride ?? ohRange.count * wo
        let rows = channels * kh * kw
        let src = SendableConstPointer(x), dst = SendablePointer(col)
        let (sh, sw) = o.stride, (ph, pw) = o.padding, (dh, dw) = o.dilation
        let body: @Sendable (Range<Int>) -> Void = { range in
            for r in range {
                let c = r / (kh * kw)
                let ki = (r / kw) % kh
                let kj = r % kw
                let plane = src.p + c * h * w
                var d = dst.p + r * ld
                // Output columns whose input column is in bounds: 0 <= ow*sw - pw + kj*dw < w.
                let offW = kj * dw - pw
                let owLo = offW >= 0 ? 0 : Swift.min(wo, (-offW + sw - 1) / sw)
                let owHi = Swift.max(owLo, Swift.min(wo, offW >= w ? 0 : (w - 1 - offW) / sw + 1))
                for oh in ohRange {
                    let ih = oh * sh - ph + ki * dh
                    if ih < 0 || ih >= h {
                        d.update(repeating: 0, count: wo)
                    } else {
                        let srow = plane + ih * w + offW
                        if owLo > 0 { d.update(repeating: 0, count: owLo) }
                        if sw == 1 {
                            (d + owLo).update(from: srow + owLo, count: owHi - owLo)
                        } else {
                            var ow = owLo
                            while ow < owHi { d[ow] = srow[ow * sw]; ow += 1 }
                        }
                        if owHi < wo { (d + owHi).update(repeating: 0, count: wo - owHi) }
                    }
                    d += wo
                }
            }
        }
        if parallel { Parallel.forEachChunk(rows, costPerItem: ohRange.count * wo, body) } else { body(0..<rows) }
    }

    /// out[n, c, :] = act(out[n, c, :] + bias[c]) over an NC(spatial) buffer, parallel over (n, c) planes.
    static func applyChannelEpilogue(_ out: UnsafeMutablePointer<Float>, batch: Int, channels: Int, spatial: Int,
                                     bias: FloatTensor?, activation: Epilogue) {
        if bias == nil && activation == .none { return }
        let dst = SendablePointer(out)
        let biasData = bias?.data ?? []
        biasData.withUnsafeBufferPointer { bb in
            let bp = bias == nil ? nil : SendableConstPointer(bb.baseAddress!)
            Parallel.forEachChunk(batch * channels, costPerItem: spatial) { range in
                for plane in range {
                    addBias(dst.p + plane * spatial, spatial, bp.map { $0.p[plane % channels] } ?? 0, activation)
                }
            }
        }
    }

    /// p[0..<count] = act(p[i] + bias): the per-channel epilogue of the im2col paths.
    @inline(__always)
    static func addBias(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ bias: Float, _ activation: Epilogue) {
        switch activation {
        case .none: for i in 0..<count { p[i] += bias }
        case .relu: for i in 0..<count { p[i] = Swift.max(p[i] + bias, 0) }
        case .silu:
            if bias != 0 { for i in 0..<count { p[i] += bias } }
            activation.apply(p, count)
        }
    }
}
