import Foundation
import LayerSplitStore
import Yams

/// What produced an artifact of a run folder, as a hash that is stored in the artifact and checked before it
/// is reused: a pretrained backbone or a checkpoint made under another recipe is retrained, never reused.
extension SearchSpace {
    /// The `model:` and `data:` sections as YAML (comments and layout aside).
    var modelAndDataText: String {
        guard let root = try? Yams.compose(yaml: text), case .mapping(let m) = root else { return text }
        return ["model", "data"].map { key in
            key + ": " + (m[Node(key)].flatMap { try? Yams.serialize(node: $0) } ?? "")
        }.joined(separator: "\n")
    }

    /// A pretrained backbone of `seed`: the data, the model, the pretraining recipe (or the init file) and the
    /// seed.
    public func pretrainingProvenance(seed: UInt64) -> String {
        let source = pretrain.initPath.map { "init \($0)" } ?? "recipe \(pretrain.recipe)"
        return RunLog.hash(ofSearchSpace: "pretraining\n\(modelAndDataText)\n\(source)\nseed \(seed)")
    }

    /// A trial's checkpoint: its backbone's provenance, the training recipe and the evaluation.
    public func trainingProvenance(seed: UInt64) -> String {
        RunLog.hash(ofSearchSpace: "training\n\(pretrainingProvenance(seed: seed))\nrecipe \(training)\neval_every \(evalEvery) on \(evaluation.rawValue)")
    }
}
