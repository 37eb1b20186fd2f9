import CHDF5
import Foundation

/// One-dimensional datasets of variable-length UTF-8 strings (what h5py reads as an array of `str` with
/// `.asstr()`, and pandas takes as an object column): the masks, states and messages of a run log's trials.
extension HDF5File {
    /// Writes a new one-dimensional string dataset. Large ones are chunked and compressed like numbers.
    public func writeStrings(_ values: [String], to dataset: String) throws {
        let p = HDF5.normalise(dataset)
        try checkWritable(p)
        guard !exists(p) else { throw StoreError(.exists, file: path, object: p, "exists already") }
        let memType = try HDF5File.variableStringType()
        defer { H5Tclose(memType) }
        var dims = [hsize_t(values.count)]
        let space = H5Screate_simple(1, &dims, nil)
        guard space >= 0 else { throw failure(.writeFailed, p, "cannot make the dataspace") }
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(ls_H5P_DATASET_CREATE())
        guard dcpl >= 0 else { throw failure(.writeFailed, p, "cannot create a property list") }
        defer { H5Pclose(dcpl) }
        if values.count >= 512 {
            var chunk = [hsize_t(min(values.count, 4096))]
            guard H5Pset_chunk(dcpl, 1, &chunk) >= 0, H5Pset_deflate(dcpl, 4) >= 0 else {
                throw failure(.writeFailed, p, "cannot set chunking or compression")
            }
        }
        let lcpl = try linkCreationList(p)
        defer { H5Pclose(lcpl) }
        let did = H5Dcreate2(id, p, memType, space, lcpl, dcpl, ls_H5P_DEFAULT())
        guard did >= 0 else { throw failure(.writeFailed, p, "cannot create the dataset") }
        defer { H5Dclose(did) }
        guard !values.isEmpty else { return }
        // One contiguous buffer of NUL-terminated strings and a pointer to each: no per-string allocation.
        var offsets: [Int] = []
        offsets.reserveCapacity(values.count)
        var bytes: [CChar] = []
        for v in values {
            offsets.append(bytes.count)
            bytes.append(contentsOf: v.utf8CString)
        }
        let status = bytes.withUnsafeBufferPointer { buffer -> herr_t in
            var pointers = offsets.map { UnsafePointer<CChar>?(buffer.baseAddress! + $0) }
            return H5Dwrite(did, memType, ls_H5S_ALL(), ls_H5S_ALL(), ls_H5P_DEFAULT(), &pointers)
        }
        guard status >= 0 else { throw failure(.writeFailed, p, "cannot write the strings") }
    }

    /// Reads a one-dimensional dataset of strings (variable- or fixed-length, as h5py writes either).
    public func readStrings(_ dataset: String) throws -> [String] {
        try withDataset(dataset) { did, p in
            let (shape, _) = try extent(did, p)
            guard shape.count == 1 else {
                throw StoreError(.shapeMismatch, file: path, object: p, "has shape \(shape); expected one dimension of strings")
            }
            let t = H5Dget_type(did)
            guard t >= 0 else { throw failure(.corrupt, p, "cannot read the element type") }
            defer { H5Tclose(t) }
            guard H5Tget_class(t) == H5T_STRING else {
                throw StoreError(.typeMismatch, file: path, object: p, "holds \(HDF5File.elementType(t)) values, not strings")
            }
            let n = shape[0]
            guard n > 0 else { return [] }
            if H5Tis_variable_str(t) > 0 {
                let memType = try HDF5File.variableStringType()
                defer { H5Tclose(memType) }
                var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
                guard H5Dread(did, memType, ls_H5S_ALL(), ls_H5S_ALL(), ls_H5P_DEFAULT(), &pointers) >= 0 else {
                    throw failure(.corrupt, p, "cannot read the strings")
                }
                defer { for q in pointers { if let q { H5free_memory(q) } } }
                return pointers.map { $0.map { String(cString: $0) } ?? "" }
            }
            let size = H5Tget_size(t)
            var bytes = [UInt8](repeating: 0, count: size * n)
            guard H5Dread(did, t, ls_H5S_ALL(), ls_H5S_ALL(), ls_H5P_DEFAULT(), &bytes) >= 0 else {
                throw failure(.corrupt, p, "cannot read the strings")
            }
            return (0..<n).map { i in
                var used = bytes[(i * size)..<((i + 1) * size)].prefix { $0 != 0 }
                if H5Tget_strpad(t) == H5T_STR_SPACEPAD { while used.last == 0x20 { used = used.dropLast() } }
                return String(decoding: used, as: UTF8.self)
            }
        }
    }
}
