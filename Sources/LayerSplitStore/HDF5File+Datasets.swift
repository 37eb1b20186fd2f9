import CHDF5
import LayerSplitEngine

/// Reading and writing datasets.
extension HDF5File {
    // MARK: - Reading

    /// Shape, element type and storage of a dataset, without reading it.
    public func info(of dataset: String) throws -> DatasetInfo {
        try withDataset(dataset) { did, p in
            let (shape, maxShape) = try extent(did, p)
            let type = try elementType(ofDataset: did, p)
            let dcpl = H5Dget_create_plist(did)
            guard dcpl >= 0 else { throw failure(.corrupt, p, "cannot read the dataset's storage properties") }
            defer { H5Pclose(dcpl) }
            var chunks: [Int]? = nil
            if H5Pget_layout(dcpl) == H5D_CHUNKED {
                var c = [hsize_t](repeating: 0, count: max(shape.count, 1))
                let n = H5Pget_chunk(dcpl, Int32(c.count), &c)
                if n > 0 { chunks = c.prefix(Int(n)).map { Int($0) } }
            }
            var gzip: Int? = nil
            for i in 0..<max(H5Pget_nfilters(dcpl), 0) {
                var flags: UInt32 = 0, nelmts = 1, config: UInt32 = 0
                var cd = [UInt32](repeating: 0, count: 1)
                var name = [CChar](repeating: 0, count: 64)
                let filter = H5Pget_filter2(dcpl, UInt32(i), &flags, &nelmts, &cd, 64, &name, &config)
                if filter == H5Z_FILTER_DEFLATE { gzip = Int(cd[0]) }
            }
            return DatasetInfo(shape: shape, maxShape: maxShape, elementType: type, chunks: chunks, gzipLevel: gzip)
        }
    }

    /// Reads a dataset (or the rows `rows` of its outermost dimension) into an array of `T`, converting
    /// integer types into any integer or float type and float types into float types.
    ///
    /// Throws `.missing` (no such dataset), `.wrongKind` (a group), `.typeMismatch` (for example floats read as
    /// integers, or strings), `.shapeMismatch` (rows out of range) or `.corrupt` (the data cannot be read).
    public func read<T: HDF5Scalar>(_ type: T.Type, _ dataset: String, rows: Range<Int>? = nil) throws -> HDF5Array<T> {
        try withDataset(dataset) { did, p in
            let (fullShape, _) = try extent(did, p)
            let stored = try elementType(ofDataset: did, p)
            guard stored.canBeRead(as: T.hdf5ElementType) else {
                throw StoreError(.typeMismatch, file: path, object: p,
                                 "holds \(stored) values, which cannot be read as \(T.hdf5ElementType)")
            }
            var shape = fullShape
            var fileSpace = ls_H5S_ALL(), memSpace = ls_H5S_ALL()
            var toClose: [hid_t] = []
            defer { for s in toClose { H5Sclose(s) } }
            if let rows {
                guard !fullShape.isEmpty, rows.lowerBound >= 0, rows.upperBound <= fullShape[0] else {
                    throw StoreError(.shapeMismatch, file: path, object: p,
                                     "rows \(rows.lowerBound)..<\(rows.upperBound) are outside the dataset's shape \(fullShape)")
                }
                shape[0] = rows.count
                if rows.count > 0 {
                    fileSpace = H5Dget_space(did)
                    guard fileSpace >= 0 else { throw failure(.corrupt, p, "cannot read the dataset's shape") }
                    toClose.append(fileSpace)
                    var start = [hsize_t](repeating: 0, count: shape.count)
                    start[0] = hsize_t(rows.lowerBound)
                    var count = HDF5.dims(shape)
                    guard H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil) >= 0 else {
                        throw failure(.invalidArgument, p, "cannot select rows \(rows)")
                    }
                    memSpace = H5Screate_simple(Int32(shape.count), &count, nil)
                    guard memSpace >= 0 else { throw failure(.invalidArgument, p, "cannot make a memory space") }
                    toClose.append(memSpace)
                }
            }
            let n = shape.reduce(1, *)
            var values = [T](repeating: .zero, count: n)
            if n > 0 {
                let status = values.withUnsafeMutableBytes {
                    H5Dread(did, T.hdf5MemoryType, memSpace, fileSpace, ls_H5P_DEFAULT(), $0.baseAddress)
                }
                guard status >= 0 else {
                    throw failure(.corrupt, p, "cannot read the data; the file may be damaged or truncated")
                }
            }
            return HDF5Array(shape: shape, values: values)
        }
    }

    /// A float dataset (or any numeric one, converted) as a tensor of its shape.
    public func readTensor(_ dataset: String) throws -> Tensor {
        let a = try read(Float.self, dataset)
        return Tensor(shape: a.shape, values: a.values)
    }

    /// `read(Float.self, ...)`: the values and the shape.
    public func readFloats(_ dataset: String, rows: Range<Int>? = nil) throws -> HDF5Array<Float> {
        try read(Float.self, dataset, rows: rows)
    }

    /// `read(UInt8.self, ...)`: for image bytes.
    public func readUInt8(_ dataset: String, rows: Range<Int>? = nil) throws -> HDF5Array<UInt8> {
        try read(UInt8.self, dataset, rows: rows)
    }

    /// `read(Int64.self, ...)`: for labels and counts (any integer type is converted).
    public func readInt64(_ dataset: String, rows: Range<Int>? = nil) throws -> HDF5Array<Int64> {
        try read(Int64.self, dataset, rows: rows)
    }

    // MARK: - Writing

    /// Writes a new dataset of `shape` (`[]` for a scalar). Parent groups are created; throws `.exists` if
    /// something is at `dataset` already.
    public func write<T: HDF5Scalar>(_ values: [T], shape: [Int], to dataset: String,
                                     storage: DatasetStorage = .automatic) throws {
        guard values.count == shape.reduce(1, *) else {
            throw StoreError(.invalidArgument, file: path, object: HDF5.normalise(dataset),
                             "\(values.count) values for shape \(shape)")
        }
        try values.withUnsafeBytes {
            try writeRaw($0.baseAddress, T.self, shape: shape, to: dataset, storage: storage)
        }
    }

    /// Writes a one-dimensional dataset.
    public func write<T: HDF5Scalar>(_ values: [T], to dataset: String, storage: DatasetStorage = .automatic) throws {
        try write(values, shape: [values.count], to: dataset, storage: storage)
    }

    /// Writes a tensor as a float32 dataset of its shape.
    public func write(_ tensor: Tensor, to dataset: String, storage: DatasetStorage = .automatic) throws {
        try writeRaw(UnsafeRawPointer(tensor.data), Float.self, shape: tensor.shape, to: dataset, storage: storage)
    }

    /// Creates an empty extensible dataset `[0] + rowShape` whose outermost dimension is unlimited, chunked
    /// `chunkRows` rows at a time (and gzip-compressed unless `gzip` is nil); `append` adds rows.
    public func createExtensible<T: HDF5Scalar>(_ type: T.Type, at dataset: String, rowShape: [Int] = [],
                                                chunkRows: Int = 64, gzip: Int? = 4) throws {
        let p = HDF5.normalise(dataset)
        try checkWritable(p)
        guard chunkRows > 0, rowShape.allSatisfy({ $0 >= 0 }) else {
            throw StoreError(.invalidArgument, file: path, object: p, "chunk rows must be positive and the row shape non-negative")
        }
        guard !exists(p) else { throw StoreError(.exists, file: path, object: p, "exists already") }
        var dims = HDF5.dims([0] + rowShape)
        // A zero-sized row dimension must be unlimited too: a chunk dimension cannot exceed a fixed one.
        var maxDims = [ls_H5S_UNLIMITED()] + rowShape.map { $0 == 0 ? ls_H5S_UNLIMITED() : hsize_t($0) }
        var chunk = [hsize_t(chunkRows)] + rowShape.map { hsize_t(max($0, 1)) }
        let space = H5Screate_simple(Int32(dims.count), &dims, &maxDims)
        guard space >= 0 else { throw failure(.writeFailed, p, "cannot make the dataspace") }
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(ls_H5P_DATASET_CREATE())
        guard dcpl >= 0 else { throw failure(.writeFailed, p, "cannot create a property list") }
        defer { H5Pclose(dcpl) }
        guard H5Pset_chunk(dcpl, Int32(chunk.count), &chunk) >= 0 else { throw failure(.writeFailed, p, "cannot set chunking") }
        if let gzip {
            guard H5Pset_shuffle(dcpl) >= 0, H5Pset_deflate(dcpl, UInt32(gzip)) >= 0 else {
                throw failure(.writeFailed, p, "cannot set gzip compression")
            }
        }
        let lcpl = try linkCreationList(p)
        defer { H5Pclose(lcpl) }
        let did = H5Dcreate2(id, p, T.hdf5FileType, space, lcpl, dcpl, ls_H5P_DEFAULT())
        guard did >= 0 else { throw failure(.writeFailed, p, "cannot create the dataset") }
        H5Dclose(did)
    }

    /// Appends rows to an extensible dataset: `values.count` must be a whole number of rows.
    public func append<T: HDF5Scalar>(_ values: [T], to dataset: String) throws {
        try checkWritable(dataset)
        if values.isEmpty { _ = try info(of: dataset); return }
        try withDataset(dataset) { did, p in
            let (shape, maxShape) = try extent(did, p)
            guard !shape.isEmpty, maxShape[0] == nil else {
                throw StoreError(.wrongKind, file: path, object: p, "is not extensible (its first dimension is fixed); create it with createExtensible")
            }
            let stored = try elementType(ofDataset: did, p)
            guard T.hdf5ElementType.canBeRead(as: stored) else {
                throw StoreError(.typeMismatch, file: path, object: p, "holds \(stored) values; cannot append \(T.hdf5ElementType)")
            }
            let rowSize = shape.dropFirst().reduce(1, *)
            guard rowSize > 0, values.count % rowSize == 0 else {
                throw StoreError(.shapeMismatch, file: path, object: p,
                                 "\(values.count) values are not a whole number of rows of shape \(Array(shape.dropFirst()))")
            }
            let rows = values.count / rowSize
            if rows == 0 { return }
            var newDims = HDF5.dims(shape)
            newDims[0] += hsize_t(rows)
            guard H5Dset_extent(did, &newDims) >= 0 else { throw failure(.writeFailed, p, "cannot extend the dataset") }
            let fileSpace = H5Dget_space(did)
            guard fileSpace >= 0 else { throw failure(.writeFailed, p, "cannot read the dataset's shape") }
            defer { H5Sclose(fileSpace) }
            var start = [hsize_t](repeating: 0, count: shape.count)
            start[0] = hsize_t(shape[0])
            var count = HDF5.dims([rows] + shape.dropFirst())
            guard H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil) >= 0 else {
                throw failure(.writeFailed, p, "cannot select the new rows")
            }
            let memSpace = H5Screate_simple(Int32(count.count), &count, nil)
            guard memSpace >= 0 else { throw failure(.writeFailed, p, "cannot make a memory space") }
            defer { H5Sclose(memSpace) }
            let status = values.withUnsafeBytes {
                H5Dwrite(did, T.hdf5MemoryType, memSpace, fileSpace, ls_H5P_DEFAULT(), $0.baseAddress)
            }
            guard status >= 0 else { throw failure(.writeFailed, p, "cannot write the new rows") }
        }
    }

    // MARK: - Helpers

    func writeRaw<T: HDF5Scalar>(_ data: UnsafeRawPointer?, _ type: T.Type, shape: [Int], to dataset: String,
                                 storage: DatasetStorage) throws {
        let p = HDF5.normalise(dataset)
        try checkWritable(p)
        guard p != "/" else { throw StoreError(.invalidArgument, file: path, object: p, "a dataset needs a name") }
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw StoreError(.invalidArgument, file: path, object: p, "negative dimension in shape \(shape)")
        }
        guard !exists(p) else { throw StoreError(.exists, file: path, object: p, "exists already") }
        var dims = HDF5.dims(shape)
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), &dims, nil)
        guard space >= 0 else { throw failure(.writeFailed, p, "cannot make the dataspace for shape \(shape)") }
        defer { H5Sclose(space) }
        let dcpl = try creationList(shape: shape, elementSize: MemoryLayout<T>.size, storage: storage, object: p)
        defer { H5Pclose(dcpl) }
        let lcpl = try linkCreationList(p)
        defer { H5Pclose(lcpl) }
        let did = H5Dcreate2(id, p, T.hdf5FileType, space, lcpl, dcpl, ls_H5P_DEFAULT())
        guard did >= 0 else { throw failure(.writeFailed, p, "cannot create the dataset") }
        defer { H5Dclose(did) }
        if shape.reduce(1, *) > 0 {
            guard H5Dwrite(did, T.hdf5MemoryType, ls_H5S_ALL(), ls_H5S_ALL(), ls_H5P_DEFAULT(), data) >= 0 else {
                throw failure(.writeFailed, p, "cannot write the data")
            }
        }
    }

    /// A dataset-creation property list for `storage`. The caller closes it.
    private func creationList(shape: [Int], elementSize: Int, storage: DatasetStorage, object: String) throws -> hid_t {
        let dcpl = H5Pcreate(ls_H5P_DATASET_CREATE())
        guard dcpl >= 0 else { throw failure(.writeFailed, object, "cannot create a property list") }
        let count = shape.reduce(1, *)
        var chunkRows: Int?? = nil   // nil: contiguous; .some(nil): automatic rows
        var gzip: Int? = nil
        switch storage {
        case .automatic:
            if count * elementSize >= 4096 { chunkRows = .some(nil); gzip = 4 }
        case .contiguous: break
        case let .chunked(rows, level):
            chunkRows = .some(rows)
            gzip = level
        }
        // Scalars and empty datasets cannot be chunked (a chunk dimension must be positive and fit the shape).
        if let rowsOption = chunkRows, !shape.isEmpty, count > 0 {
            let rowBytes = max(shape.dropFirst().reduce(1, *) * elementSize, 1)
            let rows = min(max(rowsOption ?? (262_144 / rowBytes), 1), shape[0])
            var chunk = HDF5.dims([rows] + shape.dropFirst())
            var ok = H5Pset_chunk(dcpl, Int32(chunk.count), &chunk) >= 0
            if ok, let gzip { ok = H5Pset_shuffle(dcpl) >= 0 && H5Pset_deflate(dcpl, UInt32(gzip)) >= 0 }
            guard ok else {
                H5Pclose(dcpl)
                throw failure(.writeFailed, object, "cannot set chunking or compression")
            }
        }
        return dcpl
    }

    /// The current and maximum shape (nil = unlimited) of an open dataset.
    func extent(_ did: hid_t, _ object: String) throws -> (shape: [Int], maxShape: [Int?]) {
        let space = H5Dget_space(did)
        guard space >= 0 else { throw failure(.corrupt, object, "cannot read the dataset's shape") }
        defer { H5Sclose(space) }
        return try spaceExtent(space, object)
    }

    func spaceExtent(_ space: hid_t, _ object: String) throws -> (shape: [Int], maxShape: [Int?]) {
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw failure(.corrupt, object, "cannot read the shape") }
        if rank == 0 { return ([], []) }
        var dims = [hsize_t](repeating: 0, count: Int(rank)), maxDims = dims
        guard H5Sget_simple_extent_dims(space, &dims, &maxDims) >= 0 else {
            throw failure(.corrupt, object, "cannot read the shape")
        }
        let unlimited = ls_H5S_UNLIMITED()
        return (dims.map { Int($0) }, maxDims.map { $0 == unlimited ? nil : Int($0) })
    }

    func elementType(ofDataset did: hid_t, _ object: String) throws -> HDF5ElementType {
        let t = H5Dget_type(did)
        guard t >= 0 else { throw failure(.corrupt, object, "cannot read the element type") }
        defer { H5Tclose(t) }
        return HDF5File.elementType(t)
    }

    static func elementType(_ t: hid_t) -> HDF5ElementType {
        let size = H5Tget_size(t)
        switch H5Tget_class(t) {
        case H5T_FLOAT: return size == 4 ? .float32 : size == 8 ? .float64 : .other("float\(size * 8)")
        case H5T_INTEGER:
            let signed = H5Tget_sign(t) == H5T_SGN_2
            switch (size, signed) {
            case (1, true): return .int8
            case (2, true): return .int16
            case (4, true): return .int32
            case (8, true): return .int64
            case (1, false): return .uint8
            case (2, false): return .uint16
            case (4, false): return .uint32
            case (8, false): return .uint64
            default: return .other("int\(size * 8)")
            }
        case H5T_STRING: return .string
        case H5T_COMPOUND: return .other("compound")
        case H5T_ENUM: return .other("enum")
        case H5T_ARRAY: return .other("array")
        case H5T_VLEN: return .other("vlen")
        case H5T_OPAQUE: return .other("opaque")
        case H5T_BITFIELD: return .other("bitfield")
        case H5T_REFERENCE: return .other("reference")
        default: return .other("unknown")
        }
    }
}
