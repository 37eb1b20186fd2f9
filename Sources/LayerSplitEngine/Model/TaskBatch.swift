/// One training or evaluation batch holding rows of every task: the rows of task `t` are `segments[t]`,
/// contiguous and in task order. An evaluation batch may give a task no rows; a training batch may not.
///
/// Keeping all tasks in one tensor is what lets a shared unit process every task's rows in one GEMM.
public final class TaskBatch {
    /// `[N, ...]`: `[N, features]` or `[N, H, W, C]`.
    public let inputs: Tensor
    /// One label per row, `0..<classes` of the row's task.
    public var labels: [Int32]
    /// Each task's rows.
    public var segments: [Range<Int>]

    public init(inputs: Tensor, labels: [Int32], segments: [Range<Int>]) {
        self.inputs = inputs
        self.labels = labels
        self.segments = segments
    }

    /// Rows per task.
    public var rowsPerTask: [Int] { segments.map(\.count) }

    /// Throws unless the batch fits `spec`: the input shape, one segment per task covering the rows in order,
    /// and every label in range.
    public func validate(for spec: ModelSpec) throws {
        guard Array(inputs.shape.dropFirst()) == spec.inputShape
            || (spec.inputShape.count == 1 && inputs.rowSize == spec.inputShape[0])
        else {
            throw EngineError.shapeMismatch(
                layer: "the model's first unit", expected: "[N, \(spec.inputShape.map(String.init).joined(separator: ", "))]",
                got: inputs.shape)
        }
        guard segments.count == spec.taskCount else {
            throw EngineError.invalidBatch("\(segments.count) task segments for a model with \(spec.taskCount) tasks")
        }
        var next = 0
        for (t, s) in segments.enumerated() {
            guard s.lowerBound == next else {
                throw EngineError.invalidBatch("task \(t)'s rows \(s) must start at row \(next)")
            }
            next = s.upperBound
        }
        guard next == inputs.shape[0], labels.count == next else {
            throw EngineError.invalidBatch("segments cover \(next) rows; inputs have \(inputs.shape[0]), labels \(labels.count)")
        }
        for (t, s) in segments.enumerated() {
            for r in s where labels[r] < 0 || Int(labels[r]) >= spec.taskClasses[t] {
                throw EngineError.invalidBatch("label \(labels[r]) of row \(r) is outside task \(t)'s classes 0..<\(spec.taskClasses[t])")
            }
        }
    }
}
