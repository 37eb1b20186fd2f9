import LayerSplitEngine

/// Draws training batches with `batchSize` rows from every task: one minibatch stream per task, each task
/// reshuffled (Fisher–Yates) at the start of each of its epochs from its own generator,
/// `SplitMix64(seed: seed).derived(t + 1)`.
///
/// Because every task has its own stream, a task's order depends only on the seed, its position and its own
/// size: adding a task or changing another task's size does not change it. Two batchers with the same seed
/// give the same batches.
///
/// The batch tensor and label array are allocated once and refilled each call, so the training loop does not
/// allocate; a call copies `batchSize` rows per task (one `memcpy` per row), which costs well under 1% of a
/// training step of the reference models (docs/DATA.md).
public final class Batcher {
    public let tasks: [LabeledSet]
    public let batchSize: Int
    public let batch: TaskBatch
    /// Batches drawn so far (including skipped ones).
    public private(set) var batchesDrawn = 0
    private var streams: [Stream]

    /// One task's stream: its generator, its current epoch order and the position in it.
    private struct Stream {
        var rng: SplitMix64
        var order: [Int]
        var cursor: Int

        /// The next example index, reshuffling at the start of an epoch.
        @inline(__always)
        mutating func nextIndex() -> Int {
            if cursor == order.count { reshuffle() }
            defer { cursor += 1 }
            return order[cursor]
        }

        /// Moves `n` examples on without reading them, reshuffling at each epoch boundary as `nextIndex` would.
        mutating func advance(_ n: Int) {
            var left = n
            while left > 0 {
                if cursor == order.count { reshuffle() }
                let k = min(left, order.count - cursor)
                cursor += k
                left -= k
            }
        }

        /// A new epoch: Fisher–Yates over the previous order (in place, so no allocation).
        mutating func reshuffle() {
            var i = order.count - 1
            while i > 0 {
                let j = Int(rng.next() % UInt64(i + 1))
                order.swapAt(i, j)
                i -= 1
            }
            cursor = 0
        }
    }

    /// Every task must have at least one example, and all tasks the same per-example shape.
    public init(tasks: [LabeledSet], batchSize: Int, seed: UInt64) {
        precondition(!tasks.isEmpty && batchSize > 0, "a batcher needs tasks and a positive batch size")
        precondition(tasks.allSatisfy { $0.count > 0 }, "every task needs training examples: \(tasks.map { "\($0.name) \($0.count)" })")
        precondition(tasks.allSatisfy { $0.rowSize == tasks[0].rowSize },
                     "tasks have different input shapes: \(tasks.map { "\($0.name) \($0.shape)" })")
        self.tasks = tasks
        self.batchSize = batchSize
        let root = SplitMix64(seed: seed)
        streams = tasks.enumerated().map { t, set in
            // cursor == count forces a shuffle on first use.
            Stream(rng: root.derived(UInt64(t + 1)), order: Array(0..<set.count), cursor: set.count)
        }
        batch = TaskBatch(
            inputs: Tensor(zeros: [batchSize * tasks.count] + tasks[0].shape),
            labels: [Int32](repeating: 0, count: batchSize * tasks.count),
            segments: (0..<tasks.count).map { $0 * batchSize ..< ($0 + 1) * batchSize })
    }

    /// The next batch (the same object each call, refilled).
    public func next() -> TaskBatch {
        let inputs = batch.inputs.data
        batch.labels.withUnsafeMutableBufferPointer { labels in
            for t in tasks.indices {
                let set = tasks[t]
                let row = set.rowSize
                set.x.withUnsafeBufferPointer { xs in
                    set.y.withUnsafeBufferPointer { ys in
                        let base = t * batchSize
                        for r in 0..<batchSize {
                            let i = streams[t].nextIndex()
                            (inputs + (base + r) * row).update(from: xs.baseAddress! + i * row, count: row)
                            labels[base + r] = ys[i]
                        }
                    }
                }
            }
        }
        batchesDrawn += 1
        return batch
    }

    /// Moves every stream on by `batches` batches without copying anything: afterwards `next()` returns what it
    /// would have returned after `batches` more calls (for resuming a run from a checkpoint).
    public func skip(_ batches: Int) {
        precondition(batches >= 0, "cannot skip \(batches) batches")
        for t in streams.indices { streams[t].advance(batches * batchSize) }
        batchesDrawn += batches
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
                if rows[t] > 0 {
                    s.x.withUnsafeBufferPointer {
                        (inputs.data + r0 * rs).update(from: $0.baseAddress! + start * rs, count: rows[t] * rs)
                    }
                }
                for k in 0..<rows[t] { labels[r0 + k] = s.y[start + k] }
                segments.append(r0 ..< r0 + rows[t])
                r0 += rows[t]
            }
            return TaskBatch(inputs: inputs, labels: labels, segments: segments)
        }
    }
}
