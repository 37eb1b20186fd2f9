import CHDF5

/// Attributes of groups and datasets: UTF-8 strings and numbers (scalars or one-dimensional arrays).
extension HDF5File {
    /// Names of the attributes of an object, in creation (name) order.
    public func attributeNames(of object: String = "/") throws -> [String] {
        try withObject(object) { oid, p in
            final class Names { var list: [String] = [] }
            let names = Names()
            let status = withExtendedLifetime(names) {
                H5Aiterate2(oid, H5_INDEX_NAME, H5_ITER_INC, nil, { _, name, _, context in
                    Unmanaged<Names>.fromOpaque(context!).takeUnretainedValue().list.append(String(cString: name!))
                    return 0
                }, Unmanaged.passUnretained(names).toOpaque())
            }
            guard status >= 0 else { throw failure(.corrupt, p, "cannot list the attributes") }
            return names.list
        }
    }

    /// Whether the object has the attribute. Throws if the object is missing.
    public func hasAttribute(_ name: String, of object: String = "/") throws -> Bool {
        try withObject(object) { oid, _ in
            let r = H5Aexists(oid, name)
            HDF5.clearErrors()
            return r > 0
        }
    }

    /// A string attribute (variable- or fixed-length, UTF-8 or ASCII, as h5py writes either), or nil when the
    /// object has no attribute of that name. Throws `.typeMismatch` for a number.
    public func stringAttribute(_ name: String, of object: String = "/") throws -> String? {
        try withAttribute(name, of: object) { aid, label in
            let t = H5Aget_type(aid)
            guard t >= 0 else { throw failure(.corrupt, label, "cannot read the attribute's type") }
            defer { H5Tclose(t) }
            guard H5Tget_class(t) == H5T_STRING else {
                throw StoreError(.typeMismatch, file: path, object: label, "is a \(HDF5File.elementType(t)) attribute, not a string")
            }
            let count = try attributeCount(aid, label)
            guard count == 1 else {
                throw StoreError(.shapeMismatch, file: path, object: label, "holds \(count) strings, not one")
            }
            if H5Tis_variable_str(t) > 0 {
                let memType = try HDF5File.variableStringType()
                defer { H5Tclose(memType) }
                var pointer: UnsafeMutablePointer<CChar>? = nil
                guard H5Aread(aid, memType, &pointer) >= 0 else { throw failure(.corrupt, label, "cannot read the attribute") }
                defer { if let pointer { H5free_memory(pointer) } }
                return pointer.map { String(cString: $0) } ?? ""
            }
            let size = H5Tget_size(t)
            var bytes = [UInt8](repeating: 0, count: size + 1)
            guard H5Aread(aid, t, &bytes) >= 0 else { throw failure(.corrupt, label, "cannot read the attribute") }
            var used = bytes.prefix(size).prefix { $0 != 0 }
            if H5Tget_strpad(t) == H5T_STR_SPACEPAD { while used.last == 0x20 { used = used.dropLast() } }
            return String(decoding: used, as: UTF8.self)
        }
    }

    /// A numeric attribute's values (one for a scalar), converted to `T`; nil when absent.
    public func attributeValues<T: HDF5Scalar>(_ type: T.Type, _ name: String, of object: String = "/") throws -> [T]? {
        try withAttribute(name, of: object) { aid, label in
            let t = H5Aget_type(aid)
            guard t >= 0 else { throw failure(.corrupt, label, "cannot read the attribute's type") }
            defer { H5Tclose(t) }
            let stored = HDF5File.elementType(t)
            guard stored.canBeRead(as: T.hdf5ElementType) else {
                throw StoreError(.typeMismatch, file: path, object: label, "is a \(stored) attribute, which cannot be read as \(T.hdf5ElementType)")
            }
            var values = [T](repeating: .zero, count: try attributeCount(aid, label))
            if !values.isEmpty {
                let status = values.withUnsafeMutableBytes { H5Aread(aid, T.hdf5MemoryType, $0.baseAddress) }
                guard status >= 0 else { throw failure(.corrupt, label, "cannot read the attribute") }
            }
            return values
        }
    }

    /// A scalar numeric attribute, or nil when absent. Throws `.shapeMismatch` if it holds several values.
    public func attribute<T: HDF5Scalar>(_ type: T.Type, _ name: String, of object: String = "/") throws -> T? {
        guard let values = try attributeValues(type, name, of: object) else { return nil }
        guard values.count == 1 else {
            throw StoreError(.shapeMismatch, file: path, object: HDF5.normalise(object) + "@" + name, "holds \(values.count) values, not one")
        }
        return values[0]
    }

    /// Any attribute as readable text: strings as they are, numbers as numbers (arrays in brackets).
    public func attributeText(_ name: String, of object: String = "/") throws -> String? {
        let label = attributeLabel(name, object)
        guard try hasAttribute(name, of: object) else { return nil }
        let type: HDF5ElementType = try withAttribute(name, of: object) { aid, _ in
            let t = H5Aget_type(aid)
            guard t >= 0 else { throw failure(.corrupt, label, "cannot read the attribute's type") }
            defer { H5Tclose(t) }
            return HDF5File.elementType(t)
        } ?? .other("?")
        func list<T>(_ v: [T]) -> String { v.count == 1 ? "\(v[0])" : "[" + v.map { "\($0)" }.joined(separator: ", ") + "]" }
        if type == .string { return try stringAttribute(name, of: object) }
        if type.isFloat { return try attributeValues(Double.self, name, of: object).map(list) }
        if type == .uint64 { return try attributeValues(UInt64.self, name, of: object).map(list) }
        if type.isInteger { return try attributeValues(Int64.self, name, of: object).map(list) }
        return "(\(type))"
    }

    // MARK: - Writing

    /// Sets a UTF-8 variable-length string attribute (what h5py writes for a `str`), replacing any old one.
    public func setAttribute(_ name: String, _ value: String, on object: String = "/") throws {
        try checkWritable(object)
        let memType = try HDF5File.variableStringType()
        defer { H5Tclose(memType) }
        let space = H5Screate(H5S_SCALAR)
        guard space >= 0 else { throw failure(.writeFailed, attributeLabel(name, object), "cannot make a dataspace") }
        defer { H5Sclose(space) }
        try createAttribute(name, on: object, type: memType, space: space) { aid, label in
            try value.withCString { cString in
                var pointer: UnsafePointer<CChar>? = cString
                guard H5Awrite(aid, memType, &pointer) >= 0 else { throw failure(.writeFailed, label, "cannot write the attribute") }
            }
        }
    }

    /// Sets a numeric scalar attribute, replacing any old one.
    public func setAttribute<T: HDF5Scalar>(_ name: String, _ value: T, on object: String = "/") throws {
        try setAttribute(name, values: [value], scalar: true, on: object)
    }

    /// Sets a one-dimensional numeric attribute, replacing any old one.
    public func setAttribute<T: HDF5Scalar>(_ name: String, values: [T], on object: String = "/") throws {
        try setAttribute(name, values: values, scalar: false, on: object)
    }

    /// Removes an attribute if it exists.
    public func deleteAttribute(_ name: String, of object: String = "/") throws {
        try checkWritable(object)
        try withObject(object) { oid, _ in
            if H5Aexists(oid, name) > 0 {
                guard H5Adelete(oid, name) >= 0 else {
                    throw failure(.writeFailed, attributeLabel(name, object), "cannot delete the attribute")
                }
            }
            HDF5.clearErrors()
        }
    }

    // MARK: - Helpers

    private func setAttribute<T: HDF5Scalar>(_ name: String, values: [T], scalar: Bool, on object: String) throws {
        try checkWritable(object)
        var dims = [hsize_t(values.count)]
        let space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, nil)
        guard space >= 0 else { throw failure(.writeFailed, attributeLabel(name, object), "cannot make a dataspace") }
        defer { H5Sclose(space) }
        try createAttribute(name, on: object, type: T.hdf5FileType, space: space) { aid, label in
            if values.isEmpty { return }
            let status = values.withUnsafeBytes { H5Awrite(aid, T.hdf5MemoryType, $0.baseAddress) }
            guard status >= 0 else { throw failure(.writeFailed, label, "cannot write the attribute") }
        }
    }

    private func createAttribute(_ name: String, on object: String, type: hid_t, space: hid_t,
                                 _ body: (hid_t, String) throws -> Void) throws {
        try withObject(object) { oid, p in
            let label = attributeLabel(name, p)
            if H5Aexists(oid, name) > 0 {
                guard H5Adelete(oid, name) >= 0 else { throw failure(.writeFailed, label, "cannot replace the attribute") }
            }
            HDF5.clearErrors()
            let acpl = H5Pcreate(ls_H5P_ATTRIBUTE_CREATE())
            guard acpl >= 0 else { throw failure(.writeFailed, label, "cannot create a property list") }
            defer { H5Pclose(acpl) }
            H5Pset_char_encoding(acpl, H5T_CSET_UTF8)
            let aid = H5Acreate2(oid, name, type, space, acpl, ls_H5P_DEFAULT())
            guard aid >= 0 else { throw failure(.writeFailed, label, "cannot create the attribute") }
            defer { H5Aclose(aid) }
            try body(aid, label)
        }
    }

    /// Opens attribute `name` of `object` and runs `body`; nil when the object has no such attribute.
    private func withAttribute<R>(_ name: String, of object: String, _ body: (hid_t, String) throws -> R) throws -> R? {
        try withObject(object) { oid, p in
            let label = attributeLabel(name, p)
            let exists = H5Aexists(oid, name)
            HDF5.clearErrors()
            guard exists > 0 else { return nil }
            let aid = H5Aopen(oid, name, ls_H5P_DEFAULT())
            guard aid >= 0 else { throw failure(.corrupt, label, "cannot open the attribute") }
            defer { H5Aclose(aid) }
            return try body(aid, label)
        }
    }

    private func attributeCount(_ aid: hid_t, _ label: String) throws -> Int {
        let space = H5Aget_space(aid)
        guard space >= 0 else { throw failure(.corrupt, label, "cannot read the attribute's shape") }
        defer { H5Sclose(space) }
        let n = H5Sget_simple_extent_npoints(space)
        guard n >= 0 else { throw failure(.corrupt, label, "cannot read the attribute's shape") }
        return Int(n)
    }

    /// `/weights@model`: how errors name an attribute.
    func attributeLabel(_ name: String, _ object: String) -> String { HDF5.normalise(object) + "@" + name }

    /// A variable-length UTF-8 string type. The caller closes it.
    static func variableStringType() throws -> hid_t {
        let t = H5Tcopy(ls_H5T_C_S1())
        guard t >= 0, H5Tset_size(t, ls_H5T_VARIABLE()) >= 0, H5Tset_cset(t, H5T_CSET_UTF8) >= 0 else {
            if t >= 0 { H5Tclose(t) }
            throw StoreError(.writeFailed, file: "HDF5", "cannot make a string type (\(HDF5.lastError()))")
        }
        return t
    }
}
