import LayerSplitEngine

/// Draws training batches with `batchSize` rows from every task, each task reshuffled (Fisher–Yates, from the
/// injected seed) at the start of each of its epochs.
///
/// The batch tensor and label array are allocated once and refilled each call, so the training loop does not
/// allocate. The order depends only on the seed: two batchers with the same seed give the same batches.
public final class Batcher {
    public let tasks: [LabeledSet]
    public let batchSize: Int
    private var rng: SplitMix64
    private var orders: [[Int]]
    private var cursors: [Int]
    public let batch: TaskBatch

    public init(tasks: [LabeledSet], batchSize: Int, seed: UInt64) {
        precondition(!tasks.isEmpty && batchSize > 0)
        self.tasks = tasks
        self.batchSize = batchSize
        rng = SplitMix64(seed: seed)
        orders = tasks.map { Array(0..<$0.count) }
        cursors = tasks.map { $0.count }   // forces a shuffle on first use
        let shape = tasks[0].shape
        batch = TaskBatch(
            inputs: Tensor(zeros: [batchSize * tasks.count] + shape),
            labels: [Int32](repeating: 0, count: batchSize * tasks.count),
            segments: (0..<tasks.count).map { $0 * batchSize ..< ($0 + 1) * batchSize })
    }

    /// The next batch (the same object each call, refilled).
    public func next() -> TaskBatch {
        for (t, set) in tasks.enumerated() {
            let row = set.rowSize
            set.x.withUnsafeBufferPointer { xs in
                for r in 0..<batchSize {
                    if cursors[t] == set.count {
                        orders[t].shuffle(using: &rng)
                        cursors[t] = 0
                    }
                    let i = orders[t][cursors[t]]
                    cursors[t] += 1
                    let dst = t * batchSize + r
                    (batch.inputs.data + dst * row).update(from: xs.baseAddress! + i * row, count: row)
                    batch.labels[dst] = set.y[i]
                }
            }
        }
        return batch
    }

    /// Fixed-order evaluation batches over every example of every task: batch k holds rows
    /// `k·batchSize ..< (k+1)·batchSize` of each task, and a task that has run out contributes no rows.
    public static func evaluationBatches(_ sets: [LabeledSet], batchSize: Int) -> [TaskBatch] {
        let longest = sets.map(\.count).max() ?? 0
        return stride(from: 0, to: longest, by: batchSize).map { start in
            let rows = sets.map { max(0, min(batchSize, $0.count - start)) }
            let total = rows.reduce(0, +)
            let inputs = Tensor(zeros: [total] + sets[0].shape)
            var labels = [Int32](repeating: 0, count: total)
            var segments: [Range<Int>] = []
            var r0 = 0
            for (t, s) in sets.enumerated() {
                let rs = s.rowSize
                s.x.withUnsafeBufferPointer {
                    (inputs.data + r0 * rs).update(from: $0.baseAddress! + start * rs, count: rows[t] * rs)
                }
                for k in 0..<rows[t] { labels[r0 + k] = s.y[start + k] }
                segments.append(r0 ..< r0 + rows[t])
                r0 += rows[t]
            }
            return TaskBatch(inputs: inputs, labels: labels, segments: segments)
        }
    }
}
