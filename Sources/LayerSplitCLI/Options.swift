import ArgumentParser
import LayerSplitEngine

/// Options every training command shares.
struct EngineOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and for running task-specific copies side by side.")
    var threads: Int = 1

    @Option(help: "Seed for initialisation, data and data order; the same seed and thread count repeat a run bit for bit.")
    var seed: UInt64 = 0

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func apply() { Threads.set(threads) }
}

/// The model and recipe options of the single-model commands (`train`, `pretrain`): the units, the synthetic
/// suite's task count, and a short SGD recipe.
struct RecipeOptions: ParsableArguments {
    @Option(help: "Units, comma-separated: linear:WIDTH[:rR], conv:CHANNELS[:kN][:sN][:pool], residual:CHANNELS[:sN][:bN]. Runs that start from a pretrained file must use the same units.")
    var units: String = "linear:128,linear:128,linear:128,linear:128"

    @Option(help: "Number of tasks (domains) of the synthetic suite.")
    var tasks: Int = 4

    @Option(help: "Training steps (one batch of every task per step).")
    var steps: Int = 300

    @Option(help: "Examples per task per step.")
    var batchSize: Int = 32

    @Option(help: "Learning rate (SGD with momentum 0.9, cosine schedule).")
    var lr: Float = 0.05

    @Flag(help: "Print only the final result.")
    var quiet = false

    func validate() throws {
        guard tasks >= 1 else { throw ValidationError("--tasks must be at least 1") }
        guard steps >= 1, batchSize >= 1 else { throw ValidationError("--steps and --batch-size must be positive") }
    }

    func unitSpecs() throws -> [UnitSpec] { try units.split(separator: ",").map { try UnitSpec(parsing: String($0)) } }

    var trainingRecipe: TrainingRecipe { TrainingRecipe(steps: steps, batchSize: batchSize, learningRate: lr) }
}

extension SharingMask: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }
}
