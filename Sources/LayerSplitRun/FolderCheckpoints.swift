import Foundation
import LayerSplitEngine
import LayerSplitSearch
import LayerSplitStore

/// Checkpoints of trials that successive halving may continue: `checkpoints/<trial id>.h5` in the run folder.
///
/// Each carries the provenance of its training (`SearchSpace.trainingProvenance`); a checkpoint made under
/// another recipe is not continued (the trial trains from its start instead, which gives the same result as
/// continuing a valid one, only slower).
public final class FolderCheckpoints: TrialCheckpoints {
    public let folder: String
    let provenance: (UInt64) -> String

    public init(folder: String, provenance: @escaping (UInt64) -> String) {
        self.folder = folder
        self.provenance = provenance
    }

    func path(_ key: TrialKey) -> String { folder + "/" + key.id + ".h5" }

    public func save(_ key: TrialKey, model: MultiTaskModel, trainer: Trainer) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Checkpoint.write(model, trainer: trainer, to: path(key), attributes: ["provenance": provenance(key.seed)])
    }

    public func restore(_ key: TrialKey, into model: MultiTaskModel, trainer: Trainer) throws -> Int? {
        guard FileManager.default.fileExists(atPath: path(key)),
              try WeightsFile.stringAttribute("provenance", of: path(key)) == provenance(key.seed) else { return nil }
        try Checkpoint.restore(path(key), into: model, trainer: trainer)
        return trainer.stepCount
    }
}
