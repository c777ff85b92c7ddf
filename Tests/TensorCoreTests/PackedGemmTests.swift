import Foundation
import XCTest
@testable import TensorCore

/// The packed GEMM kernels behind `Kernels.linear(…, packed:)` (CKernels/gemm_avx512.c and gemm_avx2.c,
/// PackedGemm.swift), each one this CPU supports: against a naive Double reference at sizes that are no multiple
/// of their 14-row (AVX-512) or 6-row (AVX2) tiles, their 32-column panels or 16-column halves, or their 256-long K
/// blocks, with every epilogue, on both work splits (by columns, and by rows when there is one panel); and the
/// dispatch: off (or on a CPU with neither AVX-512F nor AVX2 + FMA) the call takes the OpenBLAS path and packs nothing.
/// Helpers (`random`) are `KernelTests`'.
extension KernelTests {
    /// Runs `body` with the packed kernel switched on or off (on: `kernel`, or the fastest supported), restoring
    /// the switch afterwards.
    func withPackedKernel<T>(_ on: Bool, kernel: Gemm.PackedKernel? = nil, _ body: () throws -> T) rethrows -> T {
        let (saved, savedChoice) = (Gemm.packedKernelSwitch.enabled, Gemm.packedKernelSwitch.choice)
        Gemm.packedKernelSwitch.enabled = on
        Gemm.packedKernelSwitch.choice = kernel
        defer { Gemm.packedKernelSwitch.enabled = saved; Gemm.packedKernelSwitch.choice = savedChoice }
        return try body()
    }

    /// x · wᵀ in Double, with Σ|x·w| per element (the magnitude its rounding error scales with).
    func referenceProduct(x: FloatTensor, w: FloatTensor) -> (values: [Double], magnitudes: [Double]) {
        let (n, k) = (w.shape[0], w.shape[1]), rows = x.count / max(k, 1)
        var values = [Double](repeating: 0, count: rows * n), mags = values
        x.data.withUnsafeBufferPointer { xp in w.data.withUnsafeBufferPointer { wp in
            for r in 0..<rows { for o in 0..<n {
                var acc = 0.0, mag = 0.0
                for i in 0..<k { let t = Double(xp[r * k + i]) * Double(wp[o * k + i]); acc += t; mag += abs(t) }
                values[r * n + o] = acc; mags[r * n + o] = mag
            }}
        }}
        return (values, mags)
    }

    /// Checks `got` [rows, n] against residual + (x · wᵀ + bias), then the activation, in Double (`product` from
    /// `referenceProduct`): each element within 1e-5 of the magnitude of its terms (Σ|x·w| + |bias| + |residual|,
    /// at least 1) — float32 rounding of a sum in any order.
    func checkLinear(_ got: FloatTensor, x: FloatTensor, w: FloatTensor, product: (values: [Double], magnitudes: [Double])? = nil,
                     bias: FloatTensor?, residual: FloatTensor?, gelu: Bool, label: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        let n = w.shape[0], rows = x.count / max(w.shape[1], 1)
        XCTAssertEqual(got.shape, x.shape.dropLast() + [n], label, file: file, line: line)
        guard got.count == rows * n else { return }
        let (values, mags) = product ?? referenceProduct(x: x, w: w)
        var worst = 0.0, worstAt = (0, 0)
        for r in 0..<rows { for o in 0..<n {
            var acc = values[r * n + o], mag = mags[r * n + o]
            if let bias { acc += Double(bias.data[o]); mag += abs(Double(bias.data[o])) }
            if let residual { let v = Double(residual.data[r * n + o]); acc += v; mag += abs(v) }
            let want = gelu ? geluRef(acc) : acc
            let err = abs(Double(got.data[r * n + o]) - want) / max(mag, 1)
            if !(err <= worst) { worst = err.isNaN ? .infinity : err; worstAt = (r, o) }
        }}
        XCTAssertLessThanOrEqual(worst, 1e-5, "\(label): worst relative error at row \(worstAt.0), column \(worstAt.1)",
                                 file: file, line: line)
    }

    func testPackedLinearMatchesReferenceAtOddShapes() throws {
        try XCTSkipUnless(Gemm.packedKernelSupported, "neither AVX-512F nor AVX2 + FMA on this CPU: no packed kernel is used")
        for kernel in Gemm.supportedPackedKernels { try packedLinearMatchesReference(kernel) }
    }

    func packedLinearMatchesReference(_ kernel: Gemm.PackedKernel) throws {
        // Rows 1…520 (one short tile, tiles of 13 and 14, two row blocks of 260), K 1 / 17 (one K block) and 1024
        // (four), N 1…100 (a single partial panel — the row split when the work is large — or a partial last one);
        // then 1201 rows, five row blocks of `packedRowBlock` (280) or fewer, split by rows (few panels: 4, 1) and
        // by columns (35 panels, >= 16 per worker on 2 workers).
        XCTAssertEqual(Gemm.packedRowBlock, 280)
        let grid = [1, 7, 65, 129, 520].flatMap { m in [1, 17, 1024].flatMap { k in [1, 7, 20, 33, 100].map { n in (m, k, n) } } }
        for (m, k, n) in grid + [(1201, 17, 100), (1201, 1024, 7), (1201, 33, 1100)] {
            let x = random([m, k], seed: UInt64(m * 31 + k)), w = random([n, k], seed: UInt64(n * 7 + k))
            let bias = random([n], seed: 3), residual = random([m, n], seed: 4)
            let cache = DerivedCache<PackedLinearWeight>()
            let product = referenceProduct(x: x, w: w)
            for (useBias, useResidual, gelu) in [(true, false, false), (false, false, false), (true, true, false),
                                                 (false, true, true), (true, true, true)] {
                let got = withPackedKernel(true, kernel: kernel) {
                    XCTAssertEqual(Gemm.packedKernel, kernel)
                    return Kernels.linear(x, weight: w, bias: useBias ? bias : nil, activation: gelu ? .gelu : nil,
                                          residual: useResidual ? residual : nil, packed: cache)
                }
                checkLinear(got, x: x, w: w, product: product, bias: useBias ? bias : nil, residual: useResidual ? residual : nil,
                            gelu: gelu, label: "\(kernel): m \(m) k \(k) n \(n) bias \(useBias) residual \(useResidual) gelu \(gelu)")
            }
            XCTAssertNotNil(cache.cached, "m \(m) k \(k) n \(n): the packed path was not taken")
        }
    }

    func testPackedLinearAgreesWithOpenBLASPath() throws {
        try XCTSkipUnless(Gemm.packedKernelSupported, "neither AVX-512F nor AVX2 + FMA on this CPU: no packed kernel is used")
        // A ViT-like layer with a leading batch dimension, both sides of `shortInputRows`, on every supported kernel.
        for kernel in Gemm.supportedPackedKernels { for (b, t) in [(1, 65), (2, 97)] {
            let x = random([b, t, 384], seed: 11), w = random([200, 384], seed: 12)
            let bias = random([200], seed: 13), residual = random([b, t, 200], seed: 14)
            let cache = DerivedCache<PackedLinearWeight>()
            let packed = withPackedKernel(true, kernel: kernel) { Kernels.linear(x, weight: w, bias: bias, residual: residual, packed: cache) }
            let blas = withPackedKernel(false) { Kernels.linear(x, weight: w, bias: bias, residual: residual, packed: cache) }
            XCTAssertEqual(packed.shape, blas.shape)
            var worst: Float = 0
            for i in 0..<min(packed.count, blas.count) { worst = max(worst, abs(packed.data[i] - blas.data[i])) }
            XCTAssertLessThanOrEqual(worst, 1e-4, "\(kernel): batch \(b) tokens \(t)")
        }}
    }

    func testPackedKernelDispatchFallsBackToOpenBLAS() {
        // The CPU check agrees with the kernel's own view of the CPU (Linux: the avx512f, avx2 and fma flags).
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) {
            let flags = Set(line.split(separator: " ").map(String.init))
            var want: [Gemm.PackedKernel] = []
            if flags.contains("avx512f") { want.append(.avx512) }
            if flags.contains("avx2") && flags.contains("fma") { want.append(.avx2) }
            XCTAssertEqual(Gemm.supportedPackedKernels, want)
        }
        // A kernel asked for but not supported falls back to the fastest supported one.
        for kernel in Gemm.PackedKernel.allCases {
            XCTAssertEqual(withPackedKernel(true, kernel: kernel) { Gemm.packedKernel },
                           Gemm.supportedPackedKernels.contains(kernel) ? kernel : Gemm.supportedPackedKernels.first)
        }
        let x = random([65, 40], seed: 21), w = random([70, 40], seed: 22), bias = random([70], seed: 23)
        // Switched off: OpenBLAS, and the layer's cache stays empty (nothing packed).
        let off = DerivedCache<PackedLinearWeight>()
        let y = withPackedKernel(false) { Kernels.linear(x, weight: w, bias: bias, packed: off) }
        XCTAssertNil(off.cached)
        XCTAssertFalse(withPackedKernel(false) { Gemm.usePackedKernel })
        checkLinear(y, x: x, w: w, bias: bias, residual: nil, gelu: false, label: "switched off")
        // Switched on: packed exactly when the CPU has a packed kernel; same result either way.
        let on = DerivedCache<PackedLinearWeight>()
        let z = withPackedKernel(true) { Kernels.linear(x, weight: w, bias: bias, packed: on) }
        XCTAssertEqual(on.cached != nil, Gemm.packedKernelSupported)
        XCTAssertEqual(withPackedKernel(true) { Gemm.usePackedKernel }, Gemm.packedKernelSupported)
        checkLinear(z, x: x, w: w, bias: bias, residual: nil, gelu: false, label: "switched on")
        // Empty inputs never reach the kernel.
        let e = withPackedKernel(true) { Kernels.linear(random([0, 40], seed: 1), weight: w, bias: bias, packed: on) }
        XCTAssertEqual(e.shape, [0, 70])
        let zeroIn = DerivedCache<PackedLinearWeight>()
        let k0 = withPackedKernel(true) {
            Kernels.linear(FloatTensor(shape: [3, 0], data: []), weight: FloatTensor(shape: [5, 0], data: []), bias: FloatTensor(shape: [5], data: Array(bias.data.prefix(5))), packed: zeroIn)
        }
        XCTAssertEqual(k0.data, Array(bias.data.prefix(5)) + Array(bias.data.prefix(5)) + Array(bias.data.prefix(5)))
        XCTAssertNil(zeroIn.cached)
    }

    func testPackedWeightLayout() {
        // Panel p holds features 32p..<32p+32 as K rows of 32, zero past the last feature.
        let (n, k) = (37, 3)
        let w = FloatTensor(shape: [n, k], data: (0..<(n * k)).map { Float($0 + 1) })
        let p = PackedLinearWeight(w)
        XCTAssertEqual(p.panels, 2)
        for panel in 0..<2 { for kk in 0..<k { for j in 0..<32 {
            let f = panel * 32 + j
            XCTAssertEqual(p.floats[(panel * k + kk) * 32 + j], f < n ? w.data[f * k + kk] : 0, "panel \(panel) k \(kk) j \(j)")
        }}}
    }
}
