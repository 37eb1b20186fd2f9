import LayerSplitEngine

/// Everything a run log keeps about one trained candidate: plain data, so that a search maps its trials onto
/// it and a report reads it back (from one log or several, to merge).
public struct CandidateRecord: Hashable, Sendable, Codable {
    /// How the candidate's training ended.
    public enum Status: String, Hashable, Sendable, Codable, CaseIterable {
        /// Trained to the end.
        case done
        /// Stopped because the loss became NaN or infinite.
        case diverged
        /// Stopped by any other error (the message belongs in `attributes`, e.g. `error`).
        case failed
    }

    /// Unique within a log (`c0001`, `TTSS-s0`, ...).
    public var id: String
    /// One letter per unit (`TTSS`).
    public var mask: String
    public var seed: UInt64
    /// What it was trained with: a recipe or trial key (`steps=300,lr=0.05`, a hash, ...).
    public var trialKey: String
    public var parameterCounts: ParameterCounts
    /// The x of each curve point: the epoch, or the step of each evaluation.
    public var curveSteps: [Int]
    /// Training loss at each curve point.
    public var lossCurve: [Double]
    /// Per-task accuracy at each curve point: `accuracyCurve[point][task]`.
    public var accuracyCurve: [[Double]]
    /// Final test accuracy per task.
    public var finalAccuracy: [Double]
    /// Final test loss per task.
    public var finalLoss: [Double]
    /// Mean of `finalAccuracy` (kept as given: a failed candidate may say NaN).
    public var meanAccuracy: Double
    public var status: Status
    public var wallSeconds: Double
    /// Anything else, as text (`error`, `lr`, `budget`, ...).
    public var attributes: [String: String]

    public init(id: String, mask: String, seed: UInt64 = 0, trialKey: String = "",
                parameterCounts: ParameterCounts = ParameterCounts(shared: 0, specific: 0, heads: 0),
                curveSteps: [Int] = [], lossCurve: [Double] = [], accuracyCurve: [[Double]] = [],
                finalAccuracy: [Double] = [], finalLoss: [Double] = [], meanAccuracy: Double? = nil,
                status: Status = .done, wallSeconds: Double = 0, attributes: [String: String] = [:]) {
        self.id = id
        self.mask = mask
        self.seed = seed
        self.trialKey = trialKey
        self.parameterCounts = parameterCounts
        self.curveSteps = curveSteps
        self.lossCurve = lossCurve
        self.accuracyCurve = accuracyCurve
        self.finalAccuracy = finalAccuracy
        self.finalLoss = finalLoss
        self.meanAccuracy = meanAccuracy
            ?? (finalAccuracy.isEmpty ? .nan : finalAccuracy.reduce(0, +) / Double(finalAccuracy.count))
        self.status = status
        self.wallSeconds = wallSeconds
        self.attributes = attributes
    }

    /// Tasks, as the accuracies say.
    public var taskCount: Int { finalAccuracy.isEmpty ? (accuracyCurve.first?.count ?? 0) : finalAccuracy.count }

    /// Why the record cannot be stored, or nil.
    func problem() -> String? {
        if id.isEmpty { return "a candidate needs a non-empty id" }
        if lossCurve.count != curveSteps.count || accuracyCurve.count != curveSteps.count {
            return "candidate \(id): curve lengths differ (steps \(curveSteps.count), loss \(lossCurve.count), accuracy \(accuracyCurve.count))"
        }
        if let row = accuracyCurve.firstIndex(where: { $0.count != taskCount }) {
            return "candidate \(id): accuracy point \(row) has \(accuracyCurve[row].count) tasks, expected \(taskCount)"
        }
        if !finalLoss.isEmpty && finalLoss.count != taskCount {
            return "candidate \(id): \(finalLoss.count) final losses for \(taskCount) tasks"
        }
        return nil
    }
}
