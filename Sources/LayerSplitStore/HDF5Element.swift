import CHDF5

/// The element types LayerSplitStore reads and writes: float32, float64, int32, int64, uint8 and uint64.
///
/// Reading converts between types of the same family as HDF5 does (any integer type into any integer or float
/// array, any float type into a float array); reading floats into an integer array is refused.
public protocol HDF5Scalar: Sendable {
    /// The native type to read into and write from (an in-memory type).
    static var hdf5MemoryType: hid_t { get }
    /// The little-endian type written to files.
    static var hdf5FileType: hid_t { get }
    static var hdf5ElementType: HDF5ElementType { get }
    static var zero: Self { get }
}

extension Float: HDF5Scalar {
    public static var hdf5MemoryType: hid_t { ls_H5T_NATIVE_FLOAT() }
    public static var hdf5FileType: hid_t { ls_H5T_IEEE_F32LE() }
    public static var hdf5ElementType: HDF5ElementType { .float32 }
}

extension Double: HDF5Scalar {
    public static var hdf5MemoryType: hid_t { ls_H5T_NATIVE_DOUBLE() }
    public static var hdf5FileType: hid_t { ls_H5T_IEEE_F64LE() }
    public static var hdf5ElementType: HDF5ElementType { .float64 }
}

extension Int64: HDF5Scalar {
    public static var hdf5MemoryType: hid_t { ls_H5T_NATIVE_INT64() }
    public static var hdf5FileType: hid_t { ls_H5T_STD_I64LE() }
    public static var hdf5ElementType: HDF5ElementType { .int64 }
}

extension Int32: HDF5Scalar {
    public static var hdf5MemoryType: hid_t { ls_H5T_NATIVE_INT32() }
    public static var hdf5FileType: hid_t { ls_H5T_STD_I32LE() }
    public static var hdf5ElementType: HDF5ElementType { .int32 }
}

extension UInt8: HDF5Scalar {
    public static var hdf5MemoryType: hid_t { ls_H5T_NATIVE_UINT8() }
    public static var hdf5FileType: hid_t { ls_H5T_STD_U8LE() }
    public static var hdf5ElementType: HDF5ElementType { .uint8 }
}

extension UInt64: HDF5Scalar {
    public static var hdf5MemoryType: hid_t { ls_H5T_NATIVE_UINT64() }
    public static var hdf5FileType: hid_t { ls_H5T_STD_U64LE() }
    public static var hdf5ElementType: HDF5ElementType { .uint64 }
}

/// The element type of a dataset or attribute as stored, for reports and type checks.
public enum HDF5ElementType: Hashable, Sendable, CustomStringConvertible {
    case float32, float64
    case int8, int16, int32, int64
    case uint8, uint16, uint32, uint64
    case string
    /// Anything else (compound, enum, array, ...), with HDF5's class name.
    case other(String)

    public var isInteger: Bool {
        switch self {
        case .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64: true
        default: false
        }
    }

    public var isFloat: Bool { self == .float32 || self == .float64 }

    public var description: String {
        switch self {
        case .float32: "float32"
        case .float64: "float64"
        case .int8: "int8"
        case .int16: "int16"
        case .int32: "int32"
        case .int64: "int64"
        case .uint8: "uint8"
        case .uint16: "uint16"
        case .uint32: "uint32"
        case .uint64: "uint64"
        case .string: "string"
        case let .other(name): name
        }
    }

    /// Whether values of this stored type can be read into an array of `T`.
    func canBeRead(as t: HDF5ElementType) -> Bool {
        if t.isFloat { return isFloat || isInteger }
        if t.isInteger { return isInteger }
        return false
    }
}

/// The values of a dataset with its shape (row-major, outermost dimension first).
public struct HDF5Array<Element: HDF5Scalar>: Sendable {
    public var shape: [Int]
    public var values: [Element]

    public init(shape: [Int], values: [Element]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.shape = shape
        self.values = values
    }

    public var count: Int { values.count }
}

extension HDF5Array: Equatable where Element: Equatable {}

/// What `HDF5File.info(of:)` tells about a dataset without reading it.
public struct DatasetInfo: Hashable, Sendable {
    public var shape: [Int]
    /// Maximum shape; nil entries are unlimited (extensible) dimensions.
    public var maxShape: [Int?]
    public var elementType: HDF5ElementType
    /// Chunk shape, nil when the dataset is contiguous or compact.
    public var chunks: [Int]?
    /// gzip level, nil when not compressed with gzip.
    public var gzipLevel: Int?

    public var count: Int { shape.reduce(1, *) }
}

/// How a new dataset is laid out in the file.
public enum DatasetStorage: Hashable, Sendable {
    /// Chunked, byte-shuffled and gzip-compressed (level 4) when it holds 4 KiB or more; contiguous otherwise
    /// (chunking a few floats costs more metadata than it saves).
    case automatic
    /// One contiguous block, no compression.
    case contiguous
    /// Chunked with `rows` rows of the outermost dimension per chunk (nil: about 256 KiB per chunk), and gzip
    /// at `gzip` (nil: no compression). Shuffle is on with gzip.
    case chunked(rows: Int?, gzip: Int?)
}

/// Whether a path names a group, a dataset, or something else.
public enum HDF5ObjectKind: String, Hashable, Sendable {
    case group, dataset, other
}
