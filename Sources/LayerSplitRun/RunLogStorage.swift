import Foundation
import LayerSplitEngine
import LayerSplitSearch
import LayerSplitStore

/// The study's trials in the run's `log.h5` (`RunLog`): every finished trial is appended whole or not at all,
/// and a rerun reads them back instead of training them again.
public final class RunLogStorage: TrialStorage {
    public let log: RunLog
    private var byKey: [TrialKey: TrialResult] = [:]

    public init(log: RunLog) throws {
        self.log = log
        for record in try log.records() {
            if let r = try Self.result(from: record, file: log.path) { byKey[r.key] = r }
        }
    }

    public func result(for key: TrialKey) -> TrialResult? { byKey[key] }

    public func save(_ result: TrialResult) throws {
        try log.append(Self.record(from: result))
        byKey[result.key] = result
        saved += 1
    }

    /// Trials saved through this object (trained by this process), as opposed to read from the log.
    public private(set) var saved = 0

    public var results: [TrialResult] { byKey.values.sorted { $0.key < $1.key } }

    /// A trial as the log stores it. The record's id is the trial's id (`TTSS.seed0.steps300`).
    public static func record(from r: TrialResult) -> CandidateRecord {
        var attributes = ["steps": String(r.key.steps), "steps_trained": String(r.stepsTrained)]
        if !r.message.isEmpty { attributes["error"] = r.message }
        return CandidateRecord(
            id: r.key.id, mask: r.key.mask.description, seed: r.key.seed, trialKey: r.key.id,
            parameterCounts: r.counts, curveSteps: r.curve.map(\.step),
            lossCurve: r.curve.map { Double($0.trainLoss.reduce(0, +)) },
            accuracyCurve: r.curve.map(\.accuracy), finalAccuracy: r.accuracy, finalLoss: r.loss.map(Double.init),
            status: CandidateRecord.Status(rawValue: r.state.rawValue) ?? .failed, wallSeconds: r.seconds,
            attributes: attributes)
    }

    /// The trial a record holds; nil for records that are not trials of a study (written by other tools).
    public static func result(from c: CandidateRecord, file: String) throws -> TrialResult? {
        guard let stepsText = c.attributes["steps"], let steps = Int(stepsText),
              let mask = try? SharingMask(parsing: c.mask) else { return nil }
        let key = TrialKey(mask: mask, seed: c.seed, steps: steps)
        let curve = c.curveSteps.indices.map { i in
            // The log keeps the summed training loss per point; the per-task split is not stored.
            CurvePoint(step: c.curveSteps[i], trainLoss: [Float(c.lossCurve[i])], accuracy: c.accuracyCurve[i])
        }
        return TrialResult(key: key, state: TrialState(rawValue: c.status.rawValue) ?? .failed, counts: c.parameterCounts,
                           accuracy: c.finalAccuracy, loss: c.finalLoss.map(Float.init), curve: curve,
                           stepsTrained: Int(c.attributes["steps_trained"] ?? "") ?? steps, seconds: c.wallSeconds,
                           message: c.attributes["error"] ?? "")
    }
}

/// Checkpoints of trials that successive halving may continue: `checkpoints/<trial id>.h5` in the run folder.
public final class FolderCheckpoints: TrialCheckpoints {
    public let folder: String

    public init(folder: String) throws {
        self.folder = folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    func path(_ key: TrialKey) -> String { folder + "/" + key.id + ".h5" }

    public func save(_ key: TrialKey, model: MultiTaskModel, trainer: Trainer) throws {
        try Checkpoint.write(model, trainer: trainer, to: path(key))
    }

    public func restore(_ key: TrialKey, into model: MultiTaskModel, trainer: Trainer) throws -> Int? {
        guard FileManager.default.fileExists(atPath: path(key)) else { return nil }
        try Checkpoint.restore(path(key), into: model, trainer: trainer)
        return trainer.stepCount
    }
}
