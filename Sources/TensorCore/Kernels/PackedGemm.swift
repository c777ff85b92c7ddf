import CKernels
import Dispatch
import Foundation

/// A Linear layer's weight [out, in] packed once for the packed GEMM kernels (CKernels/gemm_avx512.c, gemm_avx2.c): panels of 32
/// output features, each `in` rows of 32 floats, zero-padded past `out`. Layers build one on first use through
/// a `DerivedCache` that they replace whenever the weight changes, so the copy never goes stale, and it costs one
/// extra copy of the weight (plus < 32 padded rows). Immutable after `init`, so forwards may share it.
package final class PackedLinearWeight: @unchecked Sendable {
    public let outFeatures: Int
    public let inFeatures: Int
    /// Panels of 32 output features (the last one padded).
    let panels: Int
    private let storage: UnsafeMutableRawPointer
    var floats: UnsafePointer<Float> { UnsafePointer(storage.assumingMemoryBound(to: Float.self)) }

    /// Packs `weight` ([out, in], in >= 1), panels split over the `Parallel` workers: the packing is a transpose
    /// of every 32-row strip, ~0.1 s for ViT-B/16's 86 M weights on one core.
    public init(_ weight: FloatTensor) {
        precondition(weight.rank == 2 && weight.shape[1] > 0, "PackedLinearWeight: needs [out, in >= 1], got \(weight.shape)")
        let (n, k) = (weight.shape[0], weight.shape[1])
        outFeatures = n; inFeatures = k
        panels = (n + Int(WEIGHTS_PANEL_WIDTH) - 1) / Int(WEIGHTS_PANEL_WIDTH)
        let count = Int(weights_packed_weight_count(n, k))
        storage = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(count, 1) * 4, alignment: 64)
        let dst = SendablePointer(storage.bindMemory(to: Float.self, capacity: count))
        weight.data.withUnsafeBufferPointer { wb in
            let src = SendableConstPointer(wb.baseAddress!)
            Parallel.forEachChunk(panels, costPerItem: 32 * k) { r in
                weights_pack_linear_weight(src.p, n, k, r.lowerBound, r.upperBound, dst.p)
            }
        }
    }

    deinit { storage.deallocate() }
}

extension Gemm {
    /// The packed kernels (CKernels): `avx512` (gemm_avx512.c, 14 × 32 tiles) and `avx2` (gemm_avx2.c, AVX2 + FMA,
    /// 6 × 16 tiles over each panel's halves). Both read the same packed weight and scratch layout.
    public enum PackedKernel: String, Sendable, CaseIterable {
        case avx512, avx2
    }

    /// The packed kernels this CPU (and OS) can run, fastest first: AVX-512F → both, AVX2 + FMA (e.g. Zen 3) → `avx2`,
    /// else none (OpenBLAS only).
    public static let supportedPackedKernels: [PackedKernel] =
        (weights_cpu_has_avx512f() != 0 ? [.avx512] : []) + (weights_cpu_has_avx2_fma() != 0 ? [.avx2] : [])

    /// Whether this CPU can run a packed kernel at all.
    public static var packedKernelSupported: Bool { !supportedPackedKernels.isEmpty }

    /// The packed kernel Linear layers with a packed-weight cache use now, or nil for the OpenBLAS path: the
    /// fastest supported one, unless `WEIGHTS_PACKED_GEMM=0` (OpenBLAS, to compare in one build) or
    /// `WEIGHTS_PACKED_GEMM=avx2|avx512` (that kernel, when supported; else the fastest supported) is set, or a test
    /// or benchmark set `packedKernelSwitch`.
    public static var packedKernel: PackedKernel? {
        let (on, choice) = packedKernelSwitch.state
        guard on, let best = supportedPackedKernels.first else { return nil }
        if let choice, supportedPackedKernels.contains(choice) { return choice }
        return best
    }

    /// Whether Linear layers with a packed-weight cache take a packed kernel (`packedKernel` is not nil).
    public static var usePackedKernel: Bool { packedKernel != nil }

    /// The switch behind `packedKernel`, for tests and benchmarks: turning it on does nothing on a CPU without a
    /// supported kernel, and `choice` nil means the fastest supported one.
    package static let packedKernelSwitch: PackedKernelSwitch = {
        let env = ProcessInfo.processInfo.environment["WEIGHTS_PACKED_GEMM"]
        return PackedKernelSwitch(enabled: env != "0", choice: env.flatMap(PackedKernel.init(rawValue:)))
    }()

    package final class PackedKernelSwitch: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Bool
        private var kernel: PackedKernel?
        init(enabled: Bool, choice: PackedKernel?) { value = enabled; kernel = choice }
        public var enabled: Bool {
            get { lock.lock(); defer { lock.unlock() }; return value }
            set { lock.lock(); defer { lock.unlock() }; value = newValue }
        }
        /// The kernel asked for (nil: the fastest supported).
        public var choice: PackedKernel? {
            get { lock.lock(); defer { lock.unlock() }; return kernel }
            set { lock.lock(); defer { lock.unlock() }; kernel = newValue }
        }
        var state: (Bool, PackedKernel?) { lock.lock(); defer { lock.unlock() }; return (value, kernel) }
    }

    /// Most rows one call of the C kernel takes: its scratch copy of one K block of the input (rows × 272 floats,
    /// ≤ 300 KB) stays in L2 beside the weight panel being read, and a fused activation runs on the block soon after.
    /// (Blocks of up to 600 rows, which stream the weight fewer times, measured ~3 % slower at 1576 × 768 × 2304.)
    static let packedRowBlock = 280

    /// C = residual + (A · Wᵀ + bias) with W packed, for A [m, k] (row stride `lda`) and C, residual [m, n]
    /// (row stride n). The work is split over the `Parallel` workers by output panels (columns) when there are at
    /// least as many panels as workers, else by rows; also by rows when every worker gets at least a full row block
    /// but fewer than 16 panels (e.g. ViT-B/16's 768-wide outputs at batch 8): each worker then copies only its own
    /// rows and runs each copied K block against all panels, not half of them (~5 % at 1576 × 768 × 768 on 2
    /// threads; with more panels the column split measured as fast or faster). Each worker runs its part in row blocks of at most
    /// `packedRowBlock` and calls `finish(rows, cols)` on each block right after its last K block (e.g. for an
    /// activation; it must only touch those elements). Needs `usePackedKernel`; m, k >= 1.
    static func sgemmPacked(m: Int, a: UnsafePointer<Float>, lda: Int, weight w: PackedLinearWeight,
                            bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, c: UnsafeMutablePointer<Float>,
                            finish: (@Sendable (Range<Int>, Range<Int>) -> Void)?) {
        let (n, k, panels) = (w.outFeatures, w.inFeatures, w.panels)
        guard let kernel = packedKernel else { preconditionFailure("sgemmPacked: no packed kernel on this CPU or switched off") }
        let gemm = kernel == .avx512 ? weights_sgemm_packed_avx512 : weights_sgemm_packed_avx2
        let ap = SendableConstPointer(a), cp = SendablePointer(c)
        let bp = bias.map(SendableConstPointer.init), rp = residual.map(SendableConstPointer.init)
        let workers = m &* n &* k < parallelThreshold ? 1 : Parallel.workers
        let byPanels = panels >= workers && !(m >= workers * packedRowBlock && panels < 16 * workers)
        let parts = byPanels ? workers : Swift.min(workers, m)
        let run: @Sendable (Int) -> Void = { part in
            let panelRange = byPanels ? split(panels, parts, part) : 0..<panels
            let rowRange = byPanels ? 0..<m : split(m, parts, part)
            if panelRange.isEmpty || rowRange.isEmpty { return }
            let cols = panelRange.lowerBound * 32 ..< Swift.min(n, panelRange.upperBound * 32)
            let blocks = (rowRange.count + packedRowBlock - 1) / packedRowBlock
            let scratch = UnsafeMutableRawPointer.allocate(
                byteCount: ((rowRange.count + blocks - 1) / blocks) * Int(WEIGHTS_INPUT_STRIDE) * 4, alignment: 64)
            defer { scratch.deallocate() }
            let s = scratch.assumingMemoryBound(to: Float.self)
            for b in 0..<blocks {
                let sub = split(rowRange.count, blocks, b)
                let rows = (rowRange.lowerBound + sub.lowerBound)..<(rowRange.lowerBound + sub.upperBound)
                gemm(rows.count, n, k, ap.p + rows.lowerBound * lda, lda, w.floats,
                                            panelRange.lowerBound, panelRange.upperBound, bp?.p,
                                            rp.map { $0.p + rows.lowerBound * n }, cp.p + rows.lowerBound * n, n, s)
                finish?(rows, cols)
            }
        }
        if parts <= 1 { run(0) } else { DispatchQueue.concurrentPerform(iterations: parts, execute: run) }
    }

    /// The `part`-th of `parts` nearly equal contiguous pieces of 0..<count.
    private static func split(_ count: Int, _ parts: Int, _ part: Int) -> Range<Int> {
        let base = count / parts, extra = count % parts
        let lo = part * base + Swift.min(part, extra)
        return lo..<(lo + base + (part < extra ? 1 : 0))
    }
}

extension Kernels {
    /// `linear` on a packed kernel (AVX-512 or AVX2): bias and residual inside the kernel's stores, the activation per
    /// row block and column range right after the kernel wrote it (still in L2). Same semantics as `linear`.
    static func linearPacked(_ x: FloatTensor, weight: PackedLinearWeight, bias: FloatTensor?, activation: VectorFunction?,
                             residual: FloatTensor?, rows: Int, shape: [Int]) -> FloatTensor {
        let (outF, inF) = (weight.outFeatures, weight.inFeatures)
        return FloatTensor(shape: shape) { (ob: UnsafeMutableBufferPointer<Float>) -> Void in
            let out = SendablePointer(ob.baseAddress!)
            var finish: (@Sendable (Range<Int>, Range<Int>) -> Void)? = nil
            if let activation {
                finish = { rs, cols in
                    for r in rs { activation.apply(out.p + r * outF + cols.lowerBound, cols.count) }
                }
            }
            x.data.withUnsafeBufferPointer { xb in
                withOptionalPointer(bias) { bp in withOptionalPointer(residual) { rp in
                    Gemm.sgemmPacked(m: rows, a: xb.baseAddress!, lda: inF, weight: weight, bias: bp?.p, residual: rp?.p,
                                     c: out.p, finish: finish)
                }}
            }
        }
    }
}
