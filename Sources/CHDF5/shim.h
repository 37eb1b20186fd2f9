// CHDF5: libhdf5's C API as LayerSplit sees it. Not a Swift API: only LayerSplitStore imports it.
// HDF5's property-list and type "constants" are macros over global variables (H5T_NATIVE_FLOAT expands to
// (H5OPEN H5T_NATIVE_FLOAT_g)); Swift cannot import them, and Swift 6 rejects the *_g globals. Each one
// LayerSplit needs is wrapped here in a static inline function named ls_<macro>.
#ifndef LAYERSPLIT_CHDF5_SHIM_H
#define LAYERSPLIT_CHDF5_SHIM_H
#include <hdf5.h>

static inline hid_t ls_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t ls_H5S_ALL(void) { return H5S_ALL; }
static inline hsize_t ls_H5S_UNLIMITED(void) { return H5S_UNLIMITED; }
static inline unsigned ls_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned ls_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }
static inline unsigned ls_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned ls_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline hid_t ls_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t ls_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t ls_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t ls_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t ls_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t ls_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t ls_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t ls_H5T_C_S1(void) { return H5T_C_S1; }
static inline hid_t ls_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t ls_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t ls_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t ls_H5P_GROUP_CREATE(void) { return H5P_GROUP_CREATE; }
static inline hid_t ls_H5P_ATTRIBUTE_CREATE(void) { return H5P_ATTRIBUTE_CREATE; }

/// Turns off HDF5's automatic printing of its error stack; LayerSplitStore reports errors itself.
static inline void ls_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

#endif
