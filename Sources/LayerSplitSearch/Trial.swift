import LayerSplitEngine

/// One unit of training work: a mask trained with one seed for a number of steps under the study's recipe.
///
/// Two trials with the same key are the same work; a study never trains a key twice. The seed fixes the
/// pretrained weights, the data order and the initialisation of new parameters, so trials of different masks
/// with the same seed are *paired*: their difference is measured on equal terms.
public struct TrialKey: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    public var mask: SharingMask
    public var seed: UInt64
    /// Training steps this trial reaches (successive halving continues a trial to more steps).
    public var steps: Int

    public init(mask: SharingMask, seed: UInt64, steps: Int) {
        self.mask = mask
        self.seed = seed
        self.steps = steps
    }

    /// `TTSS.seed0.steps300`: the trial's name in logs and file names.
    public var id: String { "\(mask).seed\(seed).steps\(steps)" }
    public var description: String { id }

    public static func < (a: TrialKey, b: TrialKey) -> Bool {
        (a.mask.description, a.seed, a.steps) < (b.mask.description, b.seed, b.steps)
    }
}

/// How a trial ended (Optuna's TrialState, restricted to finished trials).
public enum TrialState: String, Hashable, Sendable, Codable {
    /// Trained to the end and evaluated.
    case done
    /// The loss became NaN or infinite; metrics are those of the last finite evaluation, if any.
    case diverged
    /// Training or evaluation threw for another reason.
    case failed
}

/// One evaluation during training.
public struct CurvePoint: Hashable, Sendable, Codable {
    public var step: Int
    /// Mean training loss per task over the steps since the previous point.
    public var trainLoss: [Float]
    /// Accuracy per task on the evaluation split.
    public var accuracy: [Double]

    public init(step: Int, trainLoss: [Float], accuracy: [Double]) {
        self.step = step
        self.trainLoss = trainLoss
        self.accuracy = accuracy
    }
}

/// A finished trial: read-only once stored (Optuna's FrozenTrial).
public struct TrialResult: Hashable, Sendable, Codable {
    public var key: TrialKey
    public var state: TrialState
    public var counts: ParameterCounts
    /// Final accuracy per task on the evaluation split.
    public var accuracy: [Double]
    /// Final loss per task on the evaluation split.
    public var loss: [Float]
    public var curve: [CurvePoint]
    /// Steps actually trained by this trial (fewer than `key.steps` when it continued a shorter trial).
    public var stepsTrained: Int
    public var seconds: Double
    /// Why it failed or diverged; empty when done.
    public var message: String

    public init(key: TrialKey, state: TrialState, counts: ParameterCounts, accuracy: [Double], loss: [Float],
                curve: [CurvePoint], stepsTrained: Int, seconds: Double, message: String = "") {
        self.key = key
        self.state = state
        self.counts = counts
        self.accuracy = accuracy
        self.loss = loss
        self.curve = curve
        self.stepsTrained = stepsTrained
        self.seconds = seconds
        self.message = message
    }

    /// Unweighted mean of the tasks' accuracies (NaN-free: a failed trial without metrics counts as 0).
    public var meanAccuracy: Double {
        guard !accuracy.isEmpty else { return 0 }
        return accuracy.reduce(0, +) / Double(accuracy.count)
    }
}
