/// How the rows of a batch split into tasks: task `t` owns rows `segments[t]`, contiguous and in task order
/// (as in `TaskBatch`).
///
/// A `MultiTaskModel` owns one and sets it when the batch layout changes; its adapter units hold a reference and
/// read it, so that a unit, though a plain `Layer`, knows which rows belong to which task's adapter.
/// `generation` changes with every new layout, which is how cached per-task views (`TaskViews`) know to be
/// rebuilt.
public final class TaskRows {
    public private(set) var segments: [Range<Int>]
    /// Incremented whenever `segments` changes.
    public private(set) var generation = 0

    public init(_ segments: [Range<Int>] = []) { self.segments = segments }

    /// Sets the layout (allocation-free when it is unchanged).
    public func set(_ segments: [Range<Int>]) {
        guard segments != self.segments else { return }
        self.segments = segments
        generation &+= 1
    }

    /// The number of rows the layout covers.
    public var rowCount: Int { segments.last?.upperBound ?? 0 }
}

/// The per-task views of one buffer, rebuilt only when the buffer, its shape or the task layout changes, so that
/// a steady-state step allocates no `Tensor` objects.
///
/// One cache per call site (a unit's input, its pre-activation, ...): it holds the views of the last tensor it
/// was given, and so keeps only that tensor alive (a dictionary keyed by tensor would keep every batch input it
/// ever saw).
struct TaskViews {
    private var tensor: ObjectIdentifier?
    private var base: UnsafeMutablePointer<Float>?
    private var shape: [Int] = []
    private var generation = -1
    private var cached: [Tensor] = []

    mutating func views(of t: Tensor, _ rows: TaskRows) -> [Tensor] {
        if tensor == ObjectIdentifier(t), base == t.data, shape == t.shape, generation == rows.generation {
            return cached
        }
        cached = rows.segments.map { Tensor(rowsOf: t, $0) }
        tensor = ObjectIdentifier(t)
        base = t.data
        shape = t.shape
        generation = rows.generation
        return cached
    }
}
