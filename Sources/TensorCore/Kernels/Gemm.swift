import CBLAS

/// Row-major single-precision GEMM on raw pointers: C = alpha · op(A) · op(B) + beta · C, where op(A) is M×K and
/// op(B) is K×N. `lda`, `ldb`, `ldc` are row strides in elements. All matrix work in the kernels goes through here
/// (OpenBLAS, multi-threaded by OpenBLAS itself).
public enum Gemm {
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
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k),
                    alpha, a, blasint(lda), b, blasint(ldb),
                    beta, c, blasint(ldc))
    }

    /// Sets OpenBLAS's thread count (e.g. 1 inside an outer parallel loop).
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }

    /// OpenBLAS's current thread count.
    public static var threads: Int { Int(openblas_get_num_threads()) }
}
