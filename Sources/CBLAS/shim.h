#ifndef WEIGHTS_CBLAS_SHIM_H
#define WEIGHTS_CBLAS_SHIM_H
/* The part of the CBLAS interface the kernels use, as OpenBLAS exports it (cblas.h; 32-bit blasint, which is
   Debian's libopenblas0). Types only: the library is opened at run time on first use by TensorCore
   (Kernels/Gemm.swift), so commands that run no model neither load OpenBLAS nor start its threads. */
enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 };
typedef int blasint;

typedef void (*weights_cblas_sgemm_fn)(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE transA, enum CBLAS_TRANSPOSE transB,
                                       blasint m, blasint n, blasint k, float alpha, const float *a, blasint lda,
                                       const float *b, blasint ldb, float beta, float *c, blasint ldc);
typedef void (*weights_openblas_set_num_threads_fn)(int threads);
typedef int (*weights_openblas_get_num_threads_fn)(void);
#endif
