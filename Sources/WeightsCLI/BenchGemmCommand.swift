import ArgumentParser
import Foundation
import Weights

/// `weights bench-gemm`: the Linear-layer GEMM on its own, the packed kernel (AVX-512 or AVX2) against the OpenBLAS path, for
/// the micro-benchmark in Tools/bench_gemm.py (which adds PyTorch's time for the same shapes). Hidden: a
/// developer's tool, not part of the documented command line.
struct BenchGemmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-gemm",
        abstract: "Time Y = X · Wᵀ + b (a Linear layer) on the packed kernel and on OpenBLAS.",
        discussion: """
            For each MxKxN shape: X [M, K], W [N, K], b [N], seeded uniform values. Runs the two paths in alternating
            blocks of 5 calls (one warm-up each, then K timed calls each) and prints the medians (and with --json the minima) in milliseconds, one line per shape.
            The packed kernel (--kernel, default the fastest this CPU supports: avx512, else avx2) is timed only where
            the CPU supports one.
            """,
        shouldDisplay: false
    )

    @Argument(help: "Shapes as MxKxN, e.g. 65x1024x3072.")
    var shapes: [String]

    @Option(name: .long, help: "Timed calls per path.")
    var runs: Int = 50

    @Option(name: .long, help: "Packed kernel to time: avx512 or avx2 (default: the fastest supported).")
    var kernel: String?

    @Flag(name: .long, help: "Print one JSON object per shape.")
    var json = false

    func validate() throws {
        if runs < 1 { throw ValidationError("--runs must be ≥ 1") }
        if let kernel {
            guard let k = Gemm.PackedKernel(rawValue: kernel) else { throw ValidationError("--kernel must be avx512 or avx2") }
            if !Gemm.supportedPackedKernels.contains(k) { throw ValidationError("this CPU cannot run the \(kernel) kernel") }
        }
        for s in shapes where Self.parse(s) == nil { throw ValidationError("shape '\(s)' is not MxKxN with positive sizes") }
    }

    static func parse(_ s: String) -> (m: Int, k: Int, n: Int)? {
        let parts = s.split(separator: "x").compactMap { Int($0) }
        guard parts.count == 3, parts.allSatisfy({ $0 > 0 }) else { return nil }
        return (parts[0], parts[1], parts[2])
    }

    func run() throws {
        let (saved, savedChoice) = (Gemm.packedKernelSwitch.enabled, Gemm.packedKernelSwitch.choice)
        defer { Gemm.packedKernelSwitch.enabled = saved; Gemm.packedKernelSwitch.choice = savedChoice }
        if let kernel { Gemm.packedKernelSwitch.choice = Gemm.PackedKernel(rawValue: kernel) }
        for s in shapes {
            let (m, k, n) = Self.parse(s)!
            var rng = SeededGenerator(seed: 1)
            let x = rng.uniformTensor([m, k], bound: 1), w = rng.uniformTensor([n, k], bound: 0.05)
            let b = rng.uniformTensor([n], bound: 0.05)
            let cache = DerivedCache<PackedLinearWeight>()
            let clock = ContinuousClock()
            func time(packed: Bool) -> Double {
                Gemm.packedKernelSwitch.enabled = packed
                let d = clock.measure { _ = Kernels.linear(x, weight: w, bias: b, packed: cache) }
                return Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15
            }
            let packed = Gemm.packedKernelSupported
            _ = time(packed: false)
            if packed { _ = time(packed: true) }
            // Blocks of 5 calls per path, alternating: drift affects both alike, and most calls find the weight
            // in cache as in a loop of one path (PyTorch's side is such a loop); the other path's weight and
            // buffers evict it between blocks.
            var tb: [Double] = [], tp: [Double] = []
            while tb.count < runs {
                for _ in 0..<Swift.min(5, runs - tb.count) {
                    tb.append(time(packed: false))
                }
                for _ in 0..<(packed ? Swift.min(5, runs - tp.count) : 0) {
                    tp.append(time(packed: true))
                }
            }
            let mb = Self.median(tb), mp = packed ? Self.median(tp) : nil
            if json {
                var fields: [(String, JSON)] = [("shape", .string(s)), ("openblas_ms", .double(mb)),
                                                ("openblas_min_ms", .double(tb.min()!))]
                if let mp {
                    fields += [("packed_ms", .double(mp)), ("packed_min_ms", .double(tp.min()!)),
                               ("kernel", .string(Gemm.packedKernel?.rawValue ?? ""))]
                }
                print(JSON.object(fields).rendered(pretty: false))
            } else {
                let p = mp.map { String(format: "%.3f ms (%.2f×)", $0, $0 / mb) } ?? "n/a (no AVX-512F or AVX2)"
                print(String(format: "%@: OpenBLAS %.3f ms, packed %@", s, mb, p))
            }
        }
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
