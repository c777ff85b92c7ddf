/// Float32 compute kernels over `FloatTensor` (NCHW). Each kernel enters its buffers once, uses OpenBLAS
/// (`Gemm`) for matrix work and `Parallel` for element-wise loops over both cores.
package enum Kernels {}
