/// Everything LayerSplitStore refuses or fails at, as one line that names the file, the object inside it and,
/// where it is clear, the fix:
///
///     weights.h5: /weights/u03/conv.weight: shape [32, 1, 3, 3] but the model expects [32, 3, 3, 3]; ...
///
/// HDF5's own error stack is never printed; its innermost message, when there is one, ends `reason`.
public struct StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Equatable, Sendable {
        /// The file does not exist or cannot be reached.
        case fileNotFound
        /// The file exists but is not HDF5 (no HDF5 signature).
        case notHDF5
        /// The file is HDF5 but cannot be opened or read: truncated or damaged.
        case corrupt
        /// A group, dataset or attribute that should be there is not.
        case missing
        /// A dataset or attribute of another shape than expected.
        case shapeMismatch
        /// A dataset or attribute of another element type than asked for.
        case typeMismatch
        /// An object exists but is of another kind (a group where a dataset was expected, ...).
        case wrongKind
        /// The file is HDF5 but not the LayerSplit file asked for (another format, a newer version, or a run log
        /// of another search space).
        case wrongFormat
        /// The object to create exists already.
        case exists
        /// A call with arguments that cannot work (the message says which).
        case invalidArgument
        /// Writing, flushing, renaming or syncing failed.
        case writeFailed
    }

    public var kind: Kind
    /// The file as the caller named it.
    public var file: String
    /// The object path inside the file (`/weights/u01/fc.weight`), or nil when the problem is the file itself.
    public var object: String?
    /// What is wrong and, where it is clear, how to fix it.
    public var reason: String

    public init(_ kind: Kind, file: String, object: String? = nil, _ reason: String) {
        self.kind = kind
        self.file = file
        self.object = object
        self.reason = reason
    }

    public var description: String {
        if let object { return "\(file): \(object): \(reason)" }
        return "\(file): \(reason)"
    }
}
