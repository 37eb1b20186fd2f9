import Foundation
import CHDF5
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open HDF5 file: the one Swift type over libhdf5's file handle.
///
/// Objects are named by absolute paths (`/weights/u01/fc.weight`); every call opens what it needs and closes it
/// again before returning, on every path, so the only identifier held between calls is the file's own. Close
/// the file with `close()` (which reports a failed flush); `deinit` closes it too if you did not.
///
///     let file = try HDF5File(opening: "data.h5")
///     defer { try? file.close() }
///     let x = try file.read(UInt8.self, "/x")        // HDF5Array: shape + values
///     let y = try file.read(Int64.self, "/y")
///     let name = try file.stringAttribute("name", of: "/")
///
/// Every error is a `StoreError` naming the file (as given) and the object path. HDF5's error stack is never
/// printed. libhdf5 here is the thread-safe build, so files may be used from several threads (HDF5 serialises
/// its calls); one `HDF5File` should not be closed while another thread uses it.
public final class HDF5File {
    public enum Mode: Sendable { case readOnly, readWrite }

    /// The oldest HDF5 release that must read the objects this handle creates. Newer formats are smaller
    /// (compact groups, extensible-array chunk indexes) but need a newer reader.
    public enum Compatibility: Sendable {
        /// Any HDF5 (1.0 format objects): the default, readable by every h5py and h5dump.
        case earliest
        /// HDF5 1.8 and later.
        case hdf5_1_8
        /// HDF5 1.10 and later (h5py 2.7+ ships 1.10 or newer).
        case hdf5_1_10

        var low: H5F_libver_t {
            switch self {
            case .earliest: H5F_LIBVER_EARLIEST
            case .hdf5_1_8: H5F_LIBVER_V18
            case .hdf5_1_10: H5F_LIBVER_V110
            }
        }
    }

    /// The file's path as the caller gave it; errors name the file this way.
    public let path: String
    public let mode: Mode
    /// The file identifier; -1 once closed.
    private(set) var id: hid_t

    /// Opens an existing file. Throws `.fileNotFound`, `.notHDF5` (no HDF5 signature) or `.corrupt`.
    public init(opening path: String, mode: Mode = .readOnly, compatibility: Compatibility = .earliest) throws {
        HDF5.prepare()
        self.path = path
        self.mode = mode
        guard access(path, F_OK) == 0 else {
            throw StoreError(.fileNotFound, file: path, "no such file; check the path")
        }
        guard access(path, mode == .readOnly ? R_OK : R_OK | W_OK) == 0 else {
            throw StoreError(.fileNotFound, file: path, "permission denied (\(mode == .readOnly ? "read" : "read/write"))")
        }
        let isHDF5 = H5Fis_hdf5(path)
        if isHDF5 == 0 {
            HDF5.clearErrors()
            throw StoreError(.notHDF5, file: path, "not an HDF5 file (no HDF5 signature); give a .h5 file written by LayerSplit, h5py or another HDF5 tool")
        }
        let fapl = H5Pcreate(ls_H5P_FILE_ACCESS())
        defer { if fapl >= 0 { H5Pclose(fapl) } }
        // Closing the file then closes anything still open in it (a safety net: every call closes its own).
        if fapl >= 0 {
            H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG)
            if compatibility != .earliest { H5Pset_libver_bounds(fapl, compatibility.low, H5F_LIBVER_V110) }
        }
        let fid = H5Fopen(path, mode == .readOnly ? ls_H5F_ACC_RDONLY() : ls_H5F_ACC_RDWR(), fapl >= 0 ? fapl : ls_H5P_DEFAULT())
        guard fid >= 0 else {
            throw StoreError(.corrupt, file: path, "cannot open: the file is damaged or truncated (\(HDF5.lastError()))")
        }
        id = fid
    }

    /// Creates a file. Throws `.exists` if it exists and `overwrite` is false.
    public init(creating path: String, overwrite: Bool = false, compatibility: Compatibility = .earliest) throws {
        HDF5.prepare()
        self.path = path
        self.mode = .readWrite
        if !overwrite && access(path, F_OK) == 0 {
            throw StoreError(.exists, file: path, "the file exists already; remove it or choose another name")
        }
        let fapl = H5Pcreate(ls_H5P_FILE_ACCESS())
        defer { if fapl >= 0 { H5Pclose(fapl) } }
        if fapl >= 0 {
            H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG)
            if compatibility != .earliest { H5Pset_libver_bounds(fapl, compatibility.low, H5F_LIBVER_V110) }
        }
        let fid = H5Fcreate(path, overwrite ? ls_H5F_ACC_TRUNC() : ls_H5F_ACC_EXCL(), ls_H5P_DEFAULT(),
                            fapl >= 0 ? fapl : ls_H5P_DEFAULT())
        guard fid >= 0 else {
            throw StoreError(.writeFailed, file: path, "cannot create the file (\(HDF5.lastError())); check that the folder exists and is writable")
        }
        id = fid
    }

    /// A new file held in memory (HDF5's core driver without a backing store): nothing reaches the disk until
    /// `image()` is written out by the caller. `path` is the file it will become, for error messages.
    init(inMemory path: String, compatibility: Compatibility = .earliest) throws {
        HDF5.prepare()
        self.path = path
        self.mode = .readWrite
        let fapl = H5Pcreate(ls_H5P_FILE_ACCESS())
        guard fapl >= 0 else { throw StoreError(.writeFailed, file: path, "cannot make an in-memory file (\(HDF5.lastError()))") }
        defer { H5Pclose(fapl) }
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG)
        if compatibility != .earliest { H5Pset_libver_bounds(fapl, compatibility.low, H5F_LIBVER_V110) }
        guard H5Pset_fapl_core(fapl, 1 << 20, false) >= 0 else {
            throw StoreError(.writeFailed, file: path, "cannot make an in-memory file (\(HDF5.lastError()))")
        }
        // A name no open file has: HDF5 refuses to create a file under the name of one it has open.
        let name = "\(path).in-memory-\(getpid())-\(HDF5File.memoryFiles.next())"
        let fid = H5Fcreate(name, ls_H5F_ACC_TRUNC(), ls_H5P_DEFAULT(), fapl)
        guard fid >= 0 else { throw StoreError(.writeFailed, file: path, "cannot make an in-memory file (\(HDF5.lastError()))") }
        id = fid
    }

    private static let memoryFiles = Counter()

    /// The bytes of an in-memory file as they would be on disk.
    func image() throws -> Data {
        try checkOpen()
        guard H5Fflush(id, H5F_SCOPE_GLOBAL) >= 0 else {
            throw StoreError(.writeFailed, file: path, "flushing the file failed (\(HDF5.lastError()))")
        }
        let size = H5Fget_file_image(id, nil, 0)
        guard size > 0 else { throw StoreError(.writeFailed, file: path, "cannot take the file's image (\(HDF5.lastError()))") }
        var data = Data(count: size)
        let got = data.withUnsafeMutableBytes { H5Fget_file_image(id, $0.baseAddress, size) }
        guard got == size else { throw StoreError(.writeFailed, file: path, "cannot take the file's image (\(HDF5.lastError()))") }
        return data
    }

    /// Writes a new HDF5 file at `path`, whole or not at all: `body` fills it in memory, then its image is put
    /// in place by `AtomicFile.write` (temporary file, fsync, rename).
    ///
    /// libhdf5 itself never writes to the disk here. A write it cannot finish (a full disk) fails its close,
    /// and a failed close leaves its file object half torn down: the process then crashed in libhdf5's
    /// shutdown at exit (seen on a full tmpfs). Our own `write` fails cleanly with the system's reason instead.
    public static func writeAtomically(to path: String, compatibility: Compatibility = .earliest,
                                       _ body: (HDF5File) throws -> Void) throws {
        let file = try HDF5File(inMemory: path, compatibility: compatibility)
        defer { try? file.close() }
        try body(file)
        let image = try file.image()
        try file.close()
        try AtomicFile.write(image, to: path)
    }

    deinit {
        if id >= 0 { H5Fclose(id) }
    }

    /// Whether `close()` has not been called yet.
    public var isOpen: Bool { id >= 0 }

    /// Flushes and closes the file. Calling it again does nothing.
    public func close() throws {
        guard id >= 0 else { return }
        HDF5.prepare()
        let status = H5Fclose(id)
        id = -1
        guard status >= 0 else {
            throw StoreError(.writeFailed, file: path, "closing (flushing) the file failed (\(HDF5.lastError()))")
        }
    }

    /// Writes everything buffered to the operating system (not to the disk: see `fsync`).
    public func flush() throws {
        try checkOpen()
        guard H5Fflush(id, H5F_SCOPE_GLOBAL) >= 0 else {
            throw StoreError(.writeFailed, file: path, "flushing the file failed (\(HDF5.lastError()))")
        }
    }

    /// Whether `path` names an HDF5 file (it has the signature). False for missing or unreadable files.
    public static func isHDF5(_ path: String) -> Bool {
        HDF5.prepare()
        guard access(path, R_OK) == 0 else { return false }
        let r = H5Fis_hdf5(path)
        HDF5.clearErrors()
        return r > 0
    }

    /// Identifiers of this file still open, the file's own included (1 when every call cleaned up). For tests.
    var openObjectCount: Int { id >= 0 ? Int(H5Fget_obj_count(id, ls_H5F_OBJ_ALL())) : 0 }

    /// Identifiers open in the whole process, over every file. For tests.
    static var openObjectCountAllFiles: Int {
        Int(H5Fget_obj_count(ls_H5F_OBJ_ALL_FILES(), ls_H5F_OBJ_ALL()))
    }

    // MARK: - Errors and checks shared by the extensions

    func checkOpen() throws {
        HDF5.prepare()
        guard id >= 0 else { throw StoreError(.invalidArgument, file: path, "the file was closed already") }
    }

    func checkWritable(_ object: String) throws {
        try checkOpen()
        guard mode == .readWrite else {
            throw StoreError(.invalidArgument, file: path, object: object, "the file is open read-only")
        }
    }

    /// An error for a failed HDF5 call on `object`, with HDF5's innermost message.
    func failure(_ kind: StoreError.Kind, _ object: String, _ what: String) -> StoreError {
        let detail = HDF5.lastError()
        return StoreError(kind, file: path, object: object, detail.isEmpty ? what : "\(what) (\(detail))")
    }
}

/// Process-wide HDF5 set-up and helpers.
enum HDF5 {
    private static let initialised: Bool = {
        H5open()
        return true
    }()

    /// Makes sure the library is initialised and that this thread's error stack is never printed (the auto-print
    /// setting is per thread in the thread-safe build, so every entry point calls this).
    static func prepare() {
        _ = initialised
        ls_silence_errors()
    }

    /// HDF5's innermost error message on this thread (empty if none); clears the stack.
    static func lastError() -> String {
        var buf = [CChar](repeating: 0, count: 512)
        buf.withUnsafeMutableBufferPointer { ls_error_message($0.baseAddress!) }
        return condensed(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// HDF5's message made one short line: a failed system call (its file driver's "file write failed: time
    /// = ..., errno = 28, error message = 'No space left on device', buf = ...") becomes the system's reason
    /// alone, and any other message loses its line breaks, so every error stays one line.
    static func condensed(_ message: String) -> String {
        if let start = message.range(of: "error message = '"),
           let end = message[start.upperBound...].firstIndex(of: "'") {
            let reason = String(message[start.upperBound..<end])
            let call = message.prefix { $0 != ":" }
            return call.isEmpty || call.count > 40 ? reason : "\(call): \(reason)"
        }
        return message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    static func clearErrors() { H5Eclear2(ls_H5E_DEFAULT()) }

    /// `"/a/b/"` → `"/a/b"`, `"a"` → `"/a"`; "/" stays.
    static func normalise(_ path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        return "/" + parts.joined(separator: "/")
    }

    static func parent(of path: String) -> String {
        let parts = normalise(path).split(separator: "/")
        return "/" + parts.dropLast().joined(separator: "/")
    }

    static func join(_ group: String, _ name: String) -> String {
        let g = normalise(group)
        return g == "/" ? "/" + name : g + "/" + name
    }

    static func dims(_ shape: [Int]) -> [hsize_t] { shape.map { hsize_t($0) } }
}

/// A process-wide counter (thread-safe), for unique names.
final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}
