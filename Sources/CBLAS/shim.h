// CBLAS: the OpenBLAS C interface as LayerSplit sees it. Not a Swift API: only LayerSplitEngine imports it.
#ifndef LAYERSPLIT_CBLAS_SHIM_H
#define LAYERSPLIT_CBLAS_SHIM_H
#include <cblas.h>
#endif
