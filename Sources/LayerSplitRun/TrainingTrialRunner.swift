import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitSearch

/// Saves and restores the state of a trial that successive halving may continue.
public protocol TrialCheckpoints: AnyObject {
    /// Stores the model, the optimiser state and the step count reached by `key`.
    func save(_ key: TrialKey, model: MultiTaskModel, trainer: Trainer) throws
    /// Restores `key`'s checkpoint into `model` and `trainer` (optimiser state and step count); returns the
    /// step it reached, or nil when there is no checkpoint.
    func restore(_ key: TrialKey, into model: MultiTaskModel, trainer: Trainer) throws -> Int?
}

/// Trains one trial for real: builds the model for the mask, starts the backbone from the seed's pretrained
/// weights, trains with the study's recipe and evaluates on the held-out split.
///
/// Pairing: everything random in a trial derives from its seed alone — the pretrained weights, the new
/// parameters' initialisation (every unit is initialised in the same order whatever the mask, so heads get the
/// same values for every mask) and the data order — so trials of different masks with the same seed differ
/// only by the mask. The learning-rate schedule spans the study's full length, so a trial continued from a
/// shorter one's checkpoint equals one trained from scratch.
public final class TrainingTrialRunner: TrialRunner {
    public let spec: ModelSpec
    public let recipe: TrainingRecipe
    public let evalEvery: Int
    public let train: [LabeledSet]
    public let evaluation: [LabeledSet]
    public let pretrained: (UInt64) throws -> [String: Tensor]?
    public let checkpoints: TrialCheckpoints?
    /// Trials shorter than this are checkpointed at their end, so that successive halving can continue them.
    public let fullSteps: Int
    /// Where the final weights of fully trained trials go (`training.keep`); nil keeps none.
    public var models: TrialModels?
    private lazy var evalBatches = Batcher.evaluationBatches(evaluation, batchSize: 256)

    public init(spec: ModelSpec, recipe: TrainingRecipe, evalEvery: Int, train: [LabeledSet], evaluation: [LabeledSet],
                pretrained: @escaping (UInt64) throws -> [String: Tensor]?, checkpoints: TrialCheckpoints?) {
        self.spec = spec
        self.recipe = recipe
        self.evalEvery = max(evalEvery, 1)
        self.train = train
        self.evaluation = evaluation
        self.pretrained = pretrained
        self.checkpoints = checkpoints
        self.fullSteps = recipe.steps
    }

    public func run(_ key: TrialKey, continuing from: TrialKey?, progress: (TrialProgress) -> Void) throws -> TrialResult {
        // The seed's pretraining (done once, by the first trial that needs it) is not this trial's time.
        let weights = try pretrained(key.seed)
        let started = Date()
        var rng = SplitMix64(seed: key.seed).derived(1)
        let model = try MultiTaskModel(spec: spec, mask: key.mask, rng: &rng)
        if let weights { try model.loadBackbone(weights) }
        let trainer = recipe.trainer(for: model)
        let batcher = Batcher(tasks: train, batchSize: recipe.batchSize, seed: SplitMix64(seed: key.seed).derived(2).state)
        var step = 0
        if let from, let checkpoints, let reached = try checkpoints.restore(from, into: model, trainer: trainer) {
            step = reached
            batcher.skip(reached)
        }
        let firstStep = step
        var curve: [CurvePoint] = []
        var lossSum = [Double](repeating: 0, count: spec.taskCount), lossSteps = 0
        var lastEval: Evaluation?
        func result(_ state: TrialState, _ eval: Evaluation?, _ message: String = "") -> TrialResult {
            TrialResult(key: key, state: state, counts: model.parameterCounts,
                        accuracy: eval?.accuracy ?? curve.last?.accuracy ?? [],
                        loss: eval?.loss ?? [], curve: curve, stepsTrained: step - firstStep,
                        seconds: Date().timeIntervalSince(started), message: message)
        }
        do {
            while step < key.steps {
                try Interruption.check()   // a stop request drops this trial; nothing of it is stored
                let losses = try trainer.stepUnchecked(batcher.next())
                step += 1
                for t in losses.indices { lossSum[t] += Double(losses[t]) }
                lossSteps += 1
                if step % evalEvery == 0 || step == key.steps {
                    let eval = try model.evaluate(evalBatches)
                    lastEval = eval
                    curve.append(CurvePoint(step: step, trainLoss: lossSum.map { Float($0 / Double(lossSteps)) },
                                            accuracy: eval.accuracy))
                    progress(TrialProgress(step: step, steps: key.steps, loss: Float(lossSum.reduce(0, +) / Double(lossSteps))))
                    lossSum = lossSum.map { _ in 0 }
                    lossSteps = 0
                }
            }
        } catch let error as EngineError {
            if case .nonFiniteLoss = error { return result(.diverged, nil, "\(error)") }
            return result(.failed, nil, "\(error)")
        }
        let final = try lastEval ?? model.evaluate(evalBatches)   // the loop evaluates at the last step
        if key.steps < fullSteps, let checkpoints {
            try checkpoints.save(key, model: model, trainer: trainer)
        }
        // Before the study logs the trial: a model file never outlives a run without its trial in the log.
        if key.steps == fullSteps, let models { try models.save(key, model: model, accuracy: final.accuracy) }
        return result(.done, final)
    }
}
