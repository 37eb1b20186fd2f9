import CHDF5

/// Groups and links: what is in the file, creating groups, moving and deleting objects.
extension HDF5File {
    /// Whether an object exists at `path` ("/" always does).
    public func exists(_ path: String) -> Bool {
        guard (try? checkOpen()) != nil else { return false }
        var prefix = ""
        for part in HDF5.normalise(path).split(separator: "/") {
            prefix += "/" + part
            guard H5Lexists(id, prefix, ls_H5P_DEFAULT()) > 0 else {
                HDF5.clearErrors()
                return false
            }
        }
        return true
    }

    /// Whether `path` is a group or a dataset. Throws `.missing` if there is nothing there.
    public func objectKind(_ path: String) throws -> HDF5ObjectKind {
        try checkOpen()
        let p = HDF5.normalise(path)
        guard exists(p) else { throw missing(p, "no such object") }
        let oid = H5Oopen(id, p, ls_H5P_DEFAULT())
        guard oid >= 0 else { throw failure(.corrupt, p, "cannot open the object; the file may be damaged") }
        defer { H5Oclose(oid) }
        switch H5Iget_type(oid) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    /// Names of the members of a group, sorted by name. Throws unless `group` is a group.
    public func children(of group: String = "/") throws -> [String] {
        try withGroup(group) { gid, g in
            final class Names { var list: [String] = [] }
            let names = Names()
            let status = withExtendedLifetime(names) {
                H5Literate(gid, H5_INDEX_NAME, H5_ITER_INC, nil, { _, name, _, context in
                    let box = Unmanaged<Names>.fromOpaque(context!).takeUnretainedValue()
                    box.list.append(String(cString: name!))
                    return 0
                }, Unmanaged.passUnretained(names).toOpaque())
            }
            guard status >= 0 else { throw failure(.corrupt, g, "cannot list the group; the file may be damaged") }
            return names.list
        }
    }

    /// Absolute paths of every dataset under `group` (recursively), sorted.
    public func datasetPaths(under group: String = "/") throws -> [String] {
        var out: [String] = []
        for name in try children(of: group) {
            let p = HDF5.join(group, name)
            switch try objectKind(p) {
            case .dataset: out.append(p)
            case .group: out += try datasetPaths(under: p)
            case .other: break
            }
        }
        return out
    }

    /// Creates a group and any missing parents; does nothing if the group exists.
    public func createGroup(_ path: String) throws {
        try checkWritable(path)
        let p = HDF5.normalise(path)
        if p == "/" { return }
        if exists(p) {
            guard try objectKind(p) == .group else {
                throw StoreError(.wrongKind, file: self.path, object: p, "exists and is not a group")
            }
            return
        }
        let lcpl = try linkCreationList(p)
        defer { H5Pclose(lcpl) }
        let gid = H5Gcreate2(id, p, lcpl, ls_H5P_DEFAULT(), ls_H5P_DEFAULT())
        guard gid >= 0 else { throw failure(.writeFailed, p, "cannot create the group") }
        H5Gclose(gid)
    }

    /// Renames (moves) an object; the destination's parent groups are created. Throws `.exists` if the
    /// destination exists.
    public func move(_ source: String, to destination: String) throws {
        try checkWritable(source)
        let s = HDF5.normalise(source), d = HDF5.normalise(destination)
        guard exists(s) else { throw missing(s, "no such object to move") }
        guard !exists(d) else { throw StoreError(.exists, file: path, object: d, "exists already") }
        let lcpl = try linkCreationList(d)
        defer { H5Pclose(lcpl) }
        guard H5Lmove(id, s, id, d, lcpl, ls_H5P_DEFAULT()) >= 0 else {
            throw failure(.writeFailed, s, "cannot move to \(d)")
        }
    }

    /// Removes the link to an object (its space is not reclaimed inside the file, as everywhere in HDF5).
    public func delete(_ path: String) throws {
        try checkWritable(path)
        let p = HDF5.normalise(path)
        guard exists(p) else { throw missing(p, "no such object to delete") }
        guard H5Ldelete(id, p, ls_H5P_DEFAULT()) >= 0 else { throw failure(.writeFailed, p, "cannot delete") }
    }

    // MARK: - Helpers

    func missing(_ object: String, _ what: String) -> StoreError {
        StoreError(.missing, file: path, object: object, what)
    }

    /// A link-creation property list that creates intermediate groups. The caller closes it.
    func linkCreationList(_ object: String) throws -> hid_t {
        let lcpl = H5Pcreate(ls_H5P_LINK_CREATE())
        guard lcpl >= 0 else { throw failure(.writeFailed, object, "cannot create a property list") }
        guard H5Pset_create_intermediate_group(lcpl, 1) >= 0, H5Pset_char_encoding(lcpl, H5T_CSET_UTF8) >= 0 else {
            H5Pclose(lcpl)
            throw failure(.writeFailed, object, "cannot set up link creation")
        }
        return lcpl
    }

    /// Opens the group at `path`, runs `body`, closes the group.
    func withGroup<R>(_ path: String, _ body: (hid_t, String) throws -> R) throws -> R {
        try withOpened(path, as: .group, open: { H5Gopen2($0, $1, ls_H5P_DEFAULT()) }, close: { H5Gclose($0) }, body)
    }

    /// Opens the dataset at `path`, runs `body`, closes the dataset.
    func withDataset<R>(_ path: String, _ body: (hid_t, String) throws -> R) throws -> R {
        try withOpened(path, as: .dataset, open: { H5Dopen2($0, $1, ls_H5P_DEFAULT()) }, close: { H5Dclose($0) }, body)
    }

    /// Checks that `path` names a `kind` (the root is always a group), opens it, runs `body`, closes it.
    private func withOpened<R>(_ path: String, as kind: HDF5ObjectKind, open: (hid_t, String) -> hid_t,
                               close: (hid_t) -> herr_t, _ body: (hid_t, String) throws -> R) throws -> R {
        try checkOpen()
        let p = HDF5.normalise(path)
        if p != "/" {
            guard exists(p) else { throw missing(p, "no such \(kind.rawValue)") }
            let found = try objectKind(p)
            guard found == kind else {
                throw StoreError(.wrongKind, file: self.path, object: p, "is a \(found.rawValue), not a \(kind.rawValue)")
            }
        }
        let oid = open(id, p)
        guard oid >= 0 else { throw failure(.corrupt, p, "cannot open the \(kind.rawValue); the file may be damaged") }
        defer { _ = close(oid) }
        return try body(oid, p)
    }

    /// Opens a group or dataset at `path` as an object (for attributes), runs `body`, closes it.
    func withObject<R>(_ path: String, _ body: (hid_t, String) throws -> R) throws -> R {
        try checkOpen()
        let p = HDF5.normalise(path)
        guard exists(p) else { throw missing(p, "no such object") }
        let oid = H5Oopen(id, p, ls_H5P_DEFAULT())
        guard oid >= 0 else { throw failure(.corrupt, p, "cannot open the object; the file may be damaged") }
        defer { H5Oclose(oid) }
        return try body(oid, p)
    }
}
