// CZlib: zlib's C API, for reading gzip-compressed IDX files. Not a Swift API: only LayerSplitData imports it.
#ifndef LAYERSPLIT_CZLIB_SHIM_H
#define LAYERSPLIT_CZLIB_SHIM_H
#include <zlib.h>
#endif
