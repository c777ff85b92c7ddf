#ifndef WEIGHTS_CBLAS_SHIM_H
#define WEIGHTS_CBLAS_SHIM_H
#include <cblas.h>
#endif
