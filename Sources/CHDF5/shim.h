// CHDF5: libhdf5's C API as LayerSplit sees it. Not a Swift API: only LayerSplitStore imports it.
// HDF5's property-list and type "constants" are macros over global variables (H5T_NATIVE_FLOAT expands to
// (H5OPEN H5T_NATIVE_FLOAT_g)); Swift cannot import them, and Swift 6 rejects the *_g globals. Each one
// LayerSplit needs is wrapped here in a static inline function named ls_<macro>.
#ifndef LAYERSPLIT_CHDF5_SHIM_H
#define LAYERSPLIT_CHDF5_SHIM_H
#include <hdf5.h>
#include <stdio.h>

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
static inline hid_t ls_H5T_NATIVE_UINT64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t ls_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t ls_H5T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t ls_H5T_STD_U8LE(void) { return H5T_STD_U8LE; }
static inline hid_t ls_H5T_STD_U64LE(void) { return H5T_STD_U64LE; }
static inline size_t ls_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline hid_t ls_H5P_DATASET_XFER(void) { return H5P_DATASET_XFER; }
static inline hid_t ls_H5E_DEFAULT(void) { return H5E_DEFAULT; }
/// H5F_OBJ_ALL: as a `types` mask, and as the "every open file" file id of H5Fget_obj_count.
static inline unsigned ls_H5F_OBJ_ALL(void) { return H5F_OBJ_ALL; }
static inline hid_t ls_H5F_OBJ_ALL_FILES(void) { return (hid_t)H5F_OBJ_ALL; }
static inline hid_t ls_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t ls_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t ls_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t ls_H5P_GROUP_CREATE(void) { return H5P_GROUP_CREATE; }
static inline hid_t ls_H5P_ATTRIBUTE_CREATE(void) { return H5P_ATTRIBUTE_CREATE; }

/// Turns off HDF5's automatic printing of its error stack; LayerSplitStore reports errors itself.
static inline void ls_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/// Walker for ls_error_message: keeps the innermost entry of the stack (the first one walking upward).
static inline herr_t ls__innermost_error(unsigned n, const H5E_error2_t *err, void *data) {
    if (n != 0 || err == NULL) return 0;
    char *buf = (char *)data;
    char minor[160] = "";
    H5E_type_t type;
    if (H5Eget_msg(err->min_num, &type, minor, sizeof minor) < 0) minor[0] = 0;
    snprintf(buf, 512, "%s%s%s", err->desc ? err->desc : "", minor[0] ? ": " : "", minor);
    return 0;
}

/// Copies the innermost message of this thread's HDF5 error stack into `buf` (512 bytes; empty when the stack
/// is empty), then clears the stack. HDF5 never prints it: LayerSplitStore puts it in its own errors.
static inline void ls_error_message(char *buf) {
    buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, ls__innermost_error, buf);
    H5Eclear2(H5E_DEFAULT);
}

#endif
