import Foundation

/// Where a place in a search-space file is: the file, the line and the field path, for error messages.
public struct SpecLocation: Sendable, Hashable {
    public var file: String
    public var line: Int?
    /// The field path, e.g. `data.tasks[1].source.idx`.
    public var field: String

    public init(file: String, line: Int?, field: String) {
        self.file = file
        self.line = line
        self.field = field
    }

    /// An error at this place.
    public func error(_ problem: String) -> DataError {
        .spec(file: file, line: line, field: field, problem: problem)
    }
}

/// Where a task's examples come from.
public enum DataSource: Sendable, Hashable, CustomStringConvertible {
    /// A folder in the MNIST family's IDX layout (`IDXFolder`).
    case idx(folder: String)
    /// An HDF5 file: training examples in dataset `x` (float32 or uint8, N x ...) with integer labels `y`; the
    /// test split in `testX`/`testY` of the same file, or, when those are nil, carved from the training
    /// examples (`testFraction`, class-stratified, from the data seed). `layout` says how a 4-D input dataset
    /// is ordered; nil detects it (`HDF5Layout.detect`).
    case hdf5(file: String, x: String, y: String, testX: String?, testY: String?, testFraction: Double, layout: HDF5Layout? = nil)

    public var description: String {
        switch self {
        case let .idx(folder): "idx \(folder)"
        case let .hdf5(file, x, y, testX, testY, fraction, layout):
            "hdf5 \(file) (train \(x), \(y); "
                + (testX.map { "test \($0), \(testY ?? "?")" } ?? "test: \(fraction) of train carved out")
                + (layout.map { "; layout \($0.rawValue))" } ?? ")")
        }
    }

    /// The path a missing-file error names.
    public var path: String {
        switch self {
        case let .idx(folder): folder
        case let .hdf5(file, _, _, _, _, _, _): file
        }
    }
}

/// How the examples of a 4-D HDF5 input dataset are ordered: `[N, C, H, W]` (PyTorch's) or `[N, H, W, C]`
/// (the engine's). NCHW inputs are transposed to NHWC when read.
public enum HDF5Layout: String, Sendable, Hashable, CaseIterable {
    case nchw, nhwc

    /// The layout of a 4-D dataset of shape `shape` (`[N, a, b, c]`): NCHW when `a` is 1 or 3 (grey or RGB
    /// channels) and `c` is not, NHWC when `c` is 1 or 3 and `a` is not; nil when the shape does not say
    /// (both or neither are 1 or 3), and then the source must give `layout:`.
    public static func detect(_ shape: [Int]) -> HDF5Layout? {
        guard shape.count == 4 else { return nil }
        let channels: Set<Int> = [1, 3]
        switch (channels.contains(shape[1]), channels.contains(shape[3])) {
        case (true, false): return .nchw
        case (false, true): return .nhwc
        default: return nil
        }
    }
}

/// Examples to keep per split (nil: all). The train count is the small-data knob; smaller validation and
/// test counts only make evaluation cheaper.
public struct Subsample: Sendable, Hashable {
    public var train: Int?
    public var validation: Int?
    public var test: Int?

    public init(train: Int? = nil, validation: Int? = nil, test: Int? = nil) {
        self.train = train
        self.validation = validation
        self.test = test
    }

    public var isNone: Bool { train == nil && validation == nil && test == nil }
}

/// One task of a `DataSpec`: a source, then a label function, a subsample and input transforms, in that order.
public struct TaskSpec: Sendable, Hashable {
    public var name: String
    public var source: DataSource
    /// Applied in order.
    public var transforms: [InputTransform]
    public var labels: LabelFunction
    public var subsample: Subsample
    /// The source's number of classes when declared; labels must then lie below it. Otherwise one more than
    /// the largest training label.
    public var classes: Int?
    /// Where each field was written (`source`, `transform`, `labels`, `subsample`, `classes`, and `task` for
    /// the task itself), for error messages; empty for tasks made in code.
    public var locations: [String: SpecLocation]

    public init(name: String, source: DataSource, transforms: [InputTransform] = [], labels: LabelFunction = .identity,
                subsample: Subsample = Subsample(), classes: Int? = nil, locations: [String: SpecLocation] = [:]) {
        self.name = name
        self.source = source
        self.transforms = transforms
        self.labels = labels
        self.subsample = subsample
        self.classes = classes
        self.locations = locations
    }

    /// An error about `field` of this task: at its place in the file when known.
    func error(_ field: String, _ problem: String) -> DataError {
        if let loc = locations[field] ?? locations["task"] { return loc.error(problem) }
        return .invalid("task '\(name)': \(field): \(problem)")
    }

    /// Rewraps a reader's or a construction's error with this task's place in the file.
    func wrap<T>(_ field: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as DataError {
            switch e {
            case .spec: throw e
            case let .file(path, problem): throw error(field, "\(path): \(problem)")
            case let .invalid(why): throw error(field, why)
            }
        }
    }
}
