/// Examples and labels of one task split, in memory: `count` examples of per-example shape `shape`, stored
/// row-major in `x`, with labels in `0..<classes`.
public struct LabeledSet: Sendable {
    public var name: String
    /// Per-example shape: `[features]` or `[H, W, C]`.
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

    public var count: Int { y.count }
    public var rowSize: Int { shape.reduce(1, *) }

    /// The examples at `indices`, in that order.
    public func subset(_ indices: some Collection<Int>, name: String? = nil) -> LabeledSet {
        var xs = [Float](); xs.reserveCapacity(indices.count * rowSize)
        var ys = [Int32](); ys.reserveCapacity(indices.count)
        for i in indices {
            xs.append(contentsOf: x[i * rowSize ..< (i + 1) * rowSize])
            ys.append(y[i])
        }
        return LabeledSet(name: name ?? self.name, shape: shape, x: xs, y: ys, classes: classes)
    }

    /// Examples per class.
    public var classCounts: [Int] {
        var c = [Int](repeating: 0, count: classes)
        for l in y { c[Int(l)] += 1 }
        return c
    }
}

/// One task: a name and its training and held-out splits.
public struct TaskData: Sendable {
    public var name: String
    public var train: LabeledSet
    public var test: LabeledSet

    public init(name: String, train: LabeledSet, test: LabeledSet) {
        self.name = name
        self.train = train
        self.test = test
    }
}
