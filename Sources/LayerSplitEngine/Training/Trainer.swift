/// Trains a `MultiTaskModel`: forward, loss, backward and an optimiser update per step.
public final class Trainer {
    public let model: MultiTaskModel
    public let optimizer: Optimizer
    public let schedule: LearningRateSchedule
    public let warmup: Int
    /// Steps taken so far; the schedule reads it.
    public private(set) var stepCount = 0

    public init(model: MultiTaskModel, optimizer: Optimizer, schedule: LearningRateSchedule, warmup: Int = 0) {
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.warmup = warmup
    }

    /// Continues a run restored from a checkpoint taken after `step` steps (the schedule resumes there).
    public func resume(atStep step: Int) { stepCount = step }

    /// One training step on `batch`. Returns each task's mean loss before the update.
    ///
    /// Throws `EngineError.nonFiniteLoss` (and leaves the weights as they were) when a loss is NaN or
    /// infinite, so a diverging run stops with a message instead of training on NaN.
    @discardableResult
    public func step(_ batch: TaskBatch) throws -> [Float] {
        try batch.validate(for: model.spec)
        if let t = batch.segments.firstIndex(where: \.isEmpty) {
            throw EngineError.invalidBatch("task \(t) has no rows; a training batch needs rows of every task")
        }
        return try stepUnchecked(batch)
    }

    /// `step` without re-validating the batch: for loops that validated their data once up front.
    @discardableResult
    public func stepUnchecked(_ batch: TaskBatch) throws -> [Float] {
        let losses = model.computeGradientsUnchecked(batch)
        for (t, loss) in losses.enumerated() where !loss.isFinite {
            throw EngineError.nonFiniteLoss(step: stepCount, task: t, value: loss)
        }
        optimizer.step(lr: schedule.rate(at: stepCount, warmup: warmup))
        stepCount += 1
        return losses
    }

    /// Loss and accuracy of each task over `batches`, in evaluation mode (BatchNorm uses running statistics).
    public func evaluate(_ batches: some Sequence<TaskBatch>) throws -> Evaluation {
        try model.evaluate(batches)
    }
}

extension MultiTaskModel {
    /// Forward and backward in training mode: sets every parameter's `grad` to dL/dθ for the total loss
    /// L = Σₜ Lₜ, and returns each task's mean loss Lₜ. No update is made.
    public func computeGradients(_ batch: TaskBatch) throws -> [Float] {
        try batch.validate(for: spec)
        return computeGradientsUnchecked(batch)
    }

    func computeGradientsUnchecked(_ batch: TaskBatch) -> [Float] {
        forwardUnchecked(batch.inputs, segments: batch.segments, training: true)
        let results = lossAndGradients(labels: batch.labels, segments: batch.segments, gradients: true)
        backward()
        for t in results.indices { taskLosses[t] = results[t].loss }
        return taskLosses
    }

    /// Each task's mean loss for `batch` (no gradients), in training or evaluation mode.
    public func losses(_ batch: TaskBatch, training: Bool) throws -> [Float] {
        try forward(batch, training: training)
        return lossAndGradients(labels: batch.labels, segments: batch.segments, gradients: false).map(\.loss)
    }

    /// Loss and accuracy of each task over `batches`, in evaluation mode.
    public func evaluate(_ batches: some Sequence<TaskBatch>) throws -> Evaluation {
        let tasks = spec.taskCount
        var lossSum = [Double](repeating: 0, count: tasks)
        var correct = [Int](repeating: 0, count: tasks)
        var seen = [Int](repeating: 0, count: tasks)
        for batch in batches {
            try forward(batch, training: false)
            let r = lossAndGradients(labels: batch.labels, segments: batch.segments, gradients: false)
            for t in 0..<tasks {
                let n = batch.segments[t].count
                lossSum[t] += Double(r[t].loss) * Double(n)
                correct[t] += r[t].correct
                seen[t] += n
            }
        }
        return Evaluation(
            loss: (0..<tasks).map { seen[$0] > 0 ? Float(lossSum[$0] / Double(seen[$0])) : .nan },
            accuracy: (0..<tasks).map { seen[$0] > 0 ? Double(correct[$0]) / Double(seen[$0]) : .nan },
            examples: seen)
    }
}

/// Per-task results of an evaluation.
public struct Evaluation: Hashable, Sendable, Codable {
    public var loss: [Float]
    /// Fraction of examples whose arg-max logit is the label, per task.
    public var accuracy: [Double]
    public var examples: [Int]
    /// The unweighted mean of the tasks' accuracies.
    public var meanAccuracy: Double { accuracy.reduce(0, +) / Double(max(accuracy.count, 1)) }
}
