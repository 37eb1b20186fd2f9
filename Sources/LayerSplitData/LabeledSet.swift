/// Examples and labels of one task split, in memory: `count` examples of per-example shape `shape`, stored
/// row-major in `x`, with labels in `0..<classes`.
public struct LabeledSet: Sendable {
    public var name: String
    /// Per-example shape: `[features]` or `[H, W, C]` (images are NHWC, so a grey 28 x 28 image is `[28, 28, 1]`).
    public var shape: [Int]
    public var x: [Float]
    public var y: [Int32]
    public var classes: Int

    public init(name: String, shape: [Int], x: [Float], y: [Int32], classes: Int) {
        precondition(x.count == y.count * shape.reduce(1, *), "\(name): \(x.count) floats for \(y.count) examples of shape \(shape)")
        self.name = name
        self.shape = shape
        self.x = x
        self.y = y
        self.classes = classes
    }

    /// An empty set of the given shape and classes.
    public static func empty(name: String, shape: [Int], classes: Int) -> LabeledSet {
        LabeledSet(name: name, shape: shape, x: [], y: [], classes: classes)
    }

    public var count: Int { y.count }
    public var rowSize: Int { shape.reduce(1, *) }

    /// The examples at `indices`, in that order.
    public func subset(_ indices: some Collection<Int>, name: String? = nil) -> LabeledSet {
        let row = rowSize, n = indices.count
        let xs = [Float](unsafeUninitializedCapacity: n * row) { out, initialized in
            x.withUnsafeBufferPointer { src in
                var k = 0
                for i in indices {
                    precondition(i >= 0 && i < count, "index \(i) out of range for \(count) examples")
                    (out.baseAddress! + k * row).initialize(from: src.baseAddress! + i * row, count: row)
                    k += 1
                }
            }
            initialized = n * row
        }
        let ys = indices.map { y[$0] }
        return LabeledSet(name: name ?? self.name, shape: shape, x: xs, y: ys, classes: classes)
    }

    /// Examples per class.
    public var classCounts: [Int] {
        var c = [Int](repeating: 0, count: classes)
        for l in y { c[Int(l)] += 1 }
        return c
    }

    /// The smallest and largest share of the examples that one class has (0...1); both 0 for an empty set.
    public var classBalance: (min: Double, max: Double) {
        guard count > 0 else { return (0, 0) }
        let counts = classCounts
        return (Double(counts.min() ?? 0) / Double(count), Double(counts.max() ?? 0) / Double(count))
    }

    /// Indices of the examples of each class, in order.
    public var indicesByClass: [[Int]] {
        var out = [[Int]](repeating: [], count: classes)
        for (i, l) in y.enumerated() { out[Int(l)].append(i) }
        return out
    }
}

/// Where a task came from and what was done to it, for `layersplit data describe` and for reports.
public struct TaskProvenance: Sendable, Hashable {
    /// The source: `idx /usr/share/datasets/fashion-mnist`, `hdf5 file.h5 (/x, /y)`, `synthetic multi-domain`.
    public var source: String
    /// The input transforms in order (`rotate 90`, `permute seed 3`), or `none`.
    public var transform: String
    /// The label function (`groups [[0, 2], [1, 3]]`, `subset [0, 1, 2]`, `parity`), or `as stored`.
    public var labels: String
    /// The normalisation applied and its constants (`per-task mean 0.2860 std 0.3530`).
    public var normalization: String

    public init(source: String = "in memory", transform: String = "none", labels: String = "as stored",
                normalization: String = "none") {
        self.source = source
        self.transform = transform
        self.labels = labels
        self.normalization = normalization
    }
}

/// One task: a name, its training split, a validation split carved from the training data (empty when none
/// was asked for), its held-out test split, and where it came from.
public struct TaskData: Sendable {
    public var name: String
    public var train: LabeledSet
    public var validation: LabeledSet
    public var test: LabeledSet
    public var provenance: TaskProvenance

    public init(name: String, train: LabeledSet, validation: LabeledSet? = nil, test: LabeledSet,
                provenance: TaskProvenance = TaskProvenance()) {
        self.name = name
        self.train = train
        self.validation = validation ?? .empty(name: "\(name)/validation", shape: train.shape, classes: train.classes)
        self.test = test
        self.provenance = provenance
    }

    /// The per-example input shape (the same for every split).
    public var shape: [Int] { train.shape }
    /// The number of classes of the task's head.
    public var classes: Int { train.classes }
}
