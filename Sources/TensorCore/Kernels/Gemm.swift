import CBLAS
import Foundation
import Dispatch

/// Row-major single-precision GEMM on raw pointers: C = alpha · op(A) · op(B) + beta · C, where op(A) is M×K and
/// op(B) is K×N. `lda`, `ldb`, `ldc` are row strides in elements. All matrix work in the kernels goes through here
/// (OpenBLAS; kernels that split work over `Parallel` workers run it single-threaded, see `withSingleThreadedBLAS`).
package enum Gemm {
    @inlinable
    public static func sgemm(transA: Bool = false, transB: Bool = false,
                             m: Int, n: Int, k: Int,
                             alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            // OpenBLAS handles this too, but be explicit: C = beta · C.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        OpenBLAS.library.sgemm(CblasRowMajor,
                               transA ? CblasTrans : CblasNoTrans,
                               transB ? CblasTrans : CblasNoTrans,
                               blasint(m), blasint(n), blasint(k),
                               alpha, a, blasint(lda), b, blasint(ldb),
                               beta, c, blasint(ldc))
    }

    /// Sets OpenBLAS's thread count (e.g. 1 inside an outer parallel loop).
    public static func setThreads(_ n: Int) { OpenBLAS.library.setThreads(Int32(n)) }

    /// OpenBLAS's current thread count.
    public static var threads: Int { Int(OpenBLAS.library.getThreads()) }
}

/// OpenBLAS, opened on first use rather than linked: commands that run no model (inspect, convert) then neither
/// load it nor start its thread pool, which took ~6 ms of every start-up and left its threads spinning beside
/// the file copy. The entry points' C types come from the CBLAS shim.
@usableFromInline
enum OpenBLAS {
    @usableFromInline struct Library: @unchecked Sendable {
        @usableFromInline let sgemm: weights_cblas_sgemm_fn
        @usableFromInline let setThreads: weights_openblas_set_num_threads_fn
        @usableFromInline let getThreads: weights_openblas_get_num_threads_fn
    }

    /// Shared-object names tried in order (Debian's libopenblas0 provides the first).
    static let candidates = ["libopenblas.so.0", "libopenblas.so"]

    @usableFromInline static let library: Library = {
        var tried: [String] = []
        for name in candidates {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else {
                tried.append(dlerror().map { String(cString: $0) } ?? "\(name): cannot be opened")
                continue
            }
            guard let sgemm = dlsym(handle, "cblas_sgemm"), let set = dlsym(handle, "openblas_set_num_threads"),
                  let get = dlsym(handle, "openblas_get_num_threads") else {
                tried.append("\(name): missing cblas_sgemm / openblas_set_num_threads / openblas_get_num_threads")
                continue
            }
            return Library(sgemm: unsafeBitCast(sgemm, to: weights_cblas_sgemm_fn.self),
                           setThreads: unsafeBitCast(set, to: weights_openblas_set_num_threads_fn.self),
                           getThreads: unsafeBitCast(get, to: weights_openblas_get_num_threads_fn.self))
        }
        fatalError("weights: OpenBLAS is needed to run models and was not found (apt-get install libopenblas0): "
                   + tried.joined(separator: "; "))
    }()
}

extension Gemm {
    /// Runs `body` with OpenBLAS limited to one thread. Kernels that split GEMMs over `Parallel` workers
    /// themselves use it so the workers' OpenBLAS calls do not each start (or spin) OpenBLAS's own thread pool on
    /// the same cores. Nested and concurrent uses share one switch: the first to enter lowers the count, the last
    /// to leave restores it.
    public static func withSingleThreadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
        singleThreadSwitch.enter()
        defer { singleThreadSwitch.leave() }
        return try body()
    }

    /// Work (multiply-adds) below which `sgemmColumnBlocks` / `sgemmRowBlocks` run as one call on the calling thread
    /// (their default `minimumWork`).
    public static let parallelThreshold = 1 << 20

    /// C = alpha · A · op(B) + beta · C with the N columns split into one contiguous block per `Parallel` worker;
    /// each block is one single-threaded OpenBLAS call. `prepare(cols)` runs on the block's worker before its GEMM
    /// (e.g. to put a bias or residual into C for beta = 1), `finish(cols)` after it while the block is still in
    /// cache (e.g. an activation). Both get column ranges of C and must only touch those columns.
    /// Blocks start at multiples of 16 columns.
    public static func sgemmColumnBlocks(transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                                         a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                         beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                                         minimumWork: Int = parallelThreshold,
                                         prepare: (@Sendable (Range<Int>) -> Void)? = nil,
                                         finish: (@Sendable (Range<Int>) -> Void)? = nil) {
        if m == 0 || n == 0 { return }
        let ap = SendableConstPointer(a), bp = SendableConstPointer(b), cp = SendablePointer(c)
        forEachBlock(of: n, work: m &* n &* Swift.max(k, 1), minimumWork: minimumWork) { cols in
            prepare?(cols)
            let j = cols.lowerBound
            sgemm(transA: false, transB: transB, m: m, n: cols.count, k: k, alpha: alpha,
                  a: ap.p, lda: lda, b: transB ? bp.p + j * ldb : bp.p + j, ldb: ldb,
                  beta: beta, c: cp.p + j, ldc: ldc)
            finish?(cols)
        }
    }

    /// C = A · B + beta · C with the M rows split into one contiguous block per `Parallel` worker, each one
    /// single-threaded OpenBLAS call (for a B too narrow to split by columns). Blocks start at multiples of 16 rows.
    public static func sgemmRowBlocks(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                      b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
                                      c: UnsafeMutablePointer<Float>, ldc: Int, minimumWork: Int = parallelThreshold) {
        if m == 0 || n == 0 { return }
        let ap = SendableConstPointer(a), bp = SendableConstPointer(b), cp = SendablePointer(c)
        forEachBlock(of: m, work: m &* n &* Swift.max(k, 1), minimumWork: minimumWork) { rows in
            sgemm(m: rows.count, n: n, k: k, a: ap.p + rows.lowerBound * lda, lda: lda, b: bp.p, ldb: ldb,
                  beta: beta, c: cp.p + rows.lowerBound * ldc, ldc: ldc)
        }
    }

    /// Cuts 0..<count into one contiguous range per `Parallel` worker (a single range below `minimumWork`), starting
    /// at multiples of 16, and runs `block` on each with OpenBLAS single-threaded — even for one block: waking its
    /// pool for a small GEMM leaves the pool's threads spinning (sched_yield) against the next parallel kernel.
    static func forEachBlock(of count: Int, work: Int, minimumWork: Int, _ block: @Sendable (Range<Int>) -> Void) {
        let units = (count + 15) / 16
        let blocks = Swift.min(units, work < minimumWork ? 1 : Parallel.workers)
        withSingleThreadedBLAS {
            if blocks <= 1 { block(0..<count); return }
            let per = (units + blocks - 1) / blocks
            DispatchQueue.concurrentPerform(iterations: blocks) { i in
                let lo = i * per * 16, hi = Swift.min(count, (i + 1) * per * 16)
                if lo < hi { block(lo..<hi) }
            }
        }
    }
}

private final class BLASThreadSwitch: @unchecked Sendable {
    private let lock = NSLock()
    private var depth = 0
    private var saved = 1

    func enter() {
        lock.lock(); defer { lock.unlock() }
        if depth == 0 { saved = Gemm.threads; if saved != 1 { Gemm.setThreads(1) } }
        depth += 1
    }

    func leave() {
        lock.lock(); defer { lock.unlock() }
        depth -= 1
        if depth == 0 && saved != 1 { Gemm.setThreads(saved) }
    }
}

private let singleThreadSwitch = BLASThreadSwitch()
