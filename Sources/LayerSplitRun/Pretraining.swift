import LayerSplitData
import LayerSplitEngine

/// Pretraining: the backbone every candidate of a seed starts from (Zhang et al. start every task-specific
/// copy from the same pretrained weights as the shared unit).
///
/// The backbone is trained all-shared on the union of the tasks, each task with its own head, so it sees
/// every task's data; its unit weights (and BatchNorm statistics) are kept, its heads are dropped.
public enum Pretraining {
    /// Trains an all-shared model on `train` with `recipe`, seeded by `seed`, and returns it.
    public static func train(spec: ModelSpec, train: [LabeledSet], recipe: TrainingRecipe, seed: UInt64,
                             progress: ((Int, Float) -> Void)? = nil) throws -> MultiTaskModel {
        var rng = SplitMix64(seed: seed).derived(0x9E7)
        let model = try MultiTaskModel(spec: spec, mask: .all(.shared, units: spec.units.count), rng: &rng)
        let trainer = recipe.trainer(for: model)
        let batcher = Batcher(tasks: train, batchSize: recipe.batchSize, seed: SplitMix64(seed: seed).derived(0x9E8).state)
        for step in 0..<recipe.steps {
            let losses = try trainer.stepUnchecked(batcher.next())
            progress?(step + 1, losses.reduce(0, +) / Float(losses.count))
        }
        return model
    }

    /// The backbone's parameters and buffers under their shared keys (`u01/fc.weight`, ...), heads left out:
    /// what `MultiTaskModel.loadBackbone` takes.
    public static func backbone(of model: MultiTaskModel) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, p) in model.namedParameters where !name.hasPrefix("head/") { out[name] = p.value }
        for (name, b) in model.namedBuffers where !name.hasPrefix("head/") { out[name] = b }
        return out
    }
}
