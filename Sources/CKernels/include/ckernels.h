#ifndef WEIGHTS_CKERNELS_H
#define WEIGHTS_CKERNELS_H
/* Kernels written in C for the instructions Swift cannot name: single-precision GEMMs for Linear layers on a
   weight packed once, for AVX-512 (gemm_avx512.c) and for AVX2 + FMA (gemm_avx2.c). Every entry point here is safe
   to call on any x86-64 CPU except the ones documented as needing AVX-512F or AVX2 + FMA, which callers guard with
   weights_cpu_has_avx512f() / weights_cpu_has_avx2_fma(). */
#include <stddef.h>

/* Output features per packed weight panel: the micro-kernel's column width (two 16-float zmm registers). */
#define WEIGHTS_PANEL_WIDTH 32
/* Row stride, in floats, of the scratch copy of the input that weights_sgemm_packed_avx512 needs (see there). */
#define WEIGHTS_INPUT_STRIDE 272
/* Largest K block the kernel runs between loads/stores of C (must stay <= WEIGHTS_INPUT_STRIDE - 16). */
#define WEIGHTS_MAX_K_BLOCK 256

/* 1 when the CPU and the OS support AVX-512F (zmm state saved on context switches), else 0. */
int weights_cpu_has_avx512f(void);

/* Floats weights_pack_linear_weight writes for an [n, k] weight: n rounded up to whole panels, times k. */
size_t weights_packed_weight_count(long n, long k);

/* Packs panels [p0, p1) of a row-major [n, k] weight (nn.Linear's [out, in]) into `packed`: panel p holds output
   features 32p ..< 32p + 32 as k rows of 32 floats (feature-contiguous), at packed + p * k * 32; features past n
   are zero. Plain C (any CPU); callers may pack disjoint panel ranges on different threads. */
void weights_pack_linear_weight(const float *w, long n, long k, long p0, long p1, float *packed);

/* C[0..<m, cols] = residual + (A · Wᵀ + bias) for the output columns of panels [p0, p1) (cols = 32·p0 ..< min(n, 32·p1)),
   with A [m, k] at row stride lda, W packed by weights_pack_linear_weight, C and residual at row stride ldc, bias
   [n] (each of bias and residual may be NULL). `scratch` must hold m · WEIGHTS_INPUT_STRIDE floats, 64-byte
   aligned. Needs AVX-512F. m, k >= 1. */
void weights_sgemm_packed_avx512(long m, long n, long k, const float *a, long lda, const float *packed, long p0,
                                 long p1, const float *bias, const float *residual, float *c, long ldc,
                                 float *scratch);
/* 1 when the CPU and the OS support AVX2 and FMA (ymm state saved on context switches), else 0. */
int weights_cpu_has_avx2_fma(void);

/* weights_sgemm_packed_avx512's contract (same packed weight, same scratch size and alignment) on AVX2 + FMA:
   6 × 16 register tiles over each 32-wide panel's two halves. */
void weights_sgemm_packed_avx2(long m, long n, long k, const float *a, long lda, const float *packed, long p0,
                               long p1, const float *bias, const float *residual, float *c, long ldc,
                               float *scratch);

/* PyTorch's exact GELU in place on p[0..<n], the approximation of FastMath.gelu (activations_avx2.c). Needs AVX2 + FMA. */
void weights_gelu_avx2(float *p, long n);

/* Softmax of row[0..<n] in place, as Kernels.softmaxRow (activations_avx2.c). Needs AVX2 + FMA. */
void weights_softmax_row_avx2(float *row, long n);
#endif
