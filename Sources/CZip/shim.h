#ifndef WEIGHTS_CZIP_SHIM_H
#define WEIGHTS_CZIP_SHIM_H
#include <zip.h>
#endif
