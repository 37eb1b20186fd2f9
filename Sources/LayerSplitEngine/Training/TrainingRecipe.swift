/// How a candidate is trained: the optimiser, its settings, the schedule and the length.
public struct TrainingRecipe: Hashable, Sendable, Codable {
    public enum OptimizerKind: String, Hashable, Sendable, Codable, CaseIterable {
        case sgd, adam
    }
    public enum ScheduleKind: String, Hashable, Sendable, Codable, CaseIterable {
        case constant, step, cosine
    }

    public var steps: Int
    /// Rows per task per step.
    public var batchSize: Int
    public var optimizer: OptimizerKind
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float
    public var schedule: ScheduleKind
    /// For `step`: decay every this many steps by `gamma`.
    public var stepEvery: Int
    public var gamma: Float
    /// Linear warm-up steps.
    public var warmup: Int

    public init(steps: Int = 300, batchSize: Int = 32, optimizer: OptimizerKind = .sgd, learningRate: Float = 0.05,
                momentum: Float = 0.9, weightDecay: Float = 5e-4, schedule: ScheduleKind = .cosine,
                stepEvery: Int = 100, gamma: Float = 0.1, warmup: Int = 0) {
        self.steps = steps
        self.batchSize = batchSize
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.schedule = schedule
        self.stepEvery = stepEvery
        self.gamma = gamma
        self.warmup = warmup
    }

    public var learningRateSchedule: LearningRateSchedule {
        switch schedule {
        case .constant: .constant(learningRate)
        case .step: .step(base: learningRate, every: stepEvery, gamma: gamma)
        case .cosine: .cosine(base: learningRate, totalSteps: steps, minimum: 0)
        }
    }

    /// A trainer for `model` following this recipe.
    public func trainer(for model: MultiTaskModel) -> Trainer {
        let optimizer: Optimizer = switch self.optimizer {
        case .sgd: SGD(parameters: model.parameters, momentum: momentum, weightDecay: weightDecay)
        case .adam: Adam(parameters: model.parameters, weightDecay: weightDecay)
        }
        return Trainer(model: model, optimizer: optimizer, schedule: learningRateSchedule, warmup: warmup)
    }
}
