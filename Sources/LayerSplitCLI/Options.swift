import ArgumentParser
import LayerSplitData
import LayerSplitEngine
import LayerSplitRun

/// The engine's threads, which every training command takes.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and for running task-specific copies side by side.")
    var threads: Int = 1

    /// The most engine threads accepted.
    static let maxThreads = 1_024

    func validate() throws {
        guard (1...Self.maxThreads).contains(threads) else {
            throw ValidationError("--threads must be from 1 to \(Self.maxThreads), got \(threads)")
        }
    }

    func apply() { Threads.set(threads) }
}

/// Options of the commands that train from one seed (`train`, `pretrain`): the threads and the seed. `search`
/// takes only the threads: its seeds are the search space's `seeds:`, and it refuses `--seed`.
struct EngineOptions: ParsableArguments {
    @OptionGroup var threading: ThreadOptions

    @Option(help: "Seed for initialisation, data and data order; the same seed and thread count repeat a run bit for bit.")
    var seed: UInt64 = 0

    var threads: Int { threading.threads }

    func validate() throws { try threading.validate() }

    func apply() { threading.apply() }
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
        guard (1...SpecLimits.tasks).contains(tasks) else { throw ValidationError("--tasks must be from 1 to \(SpecLimits.tasks), got \(tasks)") }
        guard (1...SpecLimits.steps).contains(steps) else { throw ValidationError("--steps must be from 1 to \(SpecLimits.steps), got \(steps)") }
        guard (1...SpecLimits.batchSize).contains(batchSize) else {
            throw ValidationError("--batch-size must be from 1 to \(SpecLimits.batchSize), got \(batchSize)")
        }
        guard lr.isFinite, lr > 0, Double(lr) <= SpecLimits.learningRate else {
            throw ValidationError("--lr must be positive and at most \(Int(SpecLimits.learningRate)), got \(lr)")
        }
        let specs: [UnitSpec]
        do { specs = try unitSpecs() } catch { throw ValidationError("--units: \(error)") }
        guard specs.count <= SpecLimits.units else { throw ValidationError("--units: \(specs.count) units; at most \(SpecLimits.units)") }
    }

    /// The units, each within the limits of docs/SEARCH-SPACES.md.
    func unitSpecs() throws -> [UnitSpec] {
        try units.split(separator: ",").map {
            let unit = try UnitSpec(parsing: String($0))
            if let problem = SearchSpace.unitProblem(unit) { throw EngineError.invalidModel(problem) }
            return unit
        }
    }

    var trainingRecipe: TrainingRecipe { TrainingRecipe(steps: steps, batchSize: batchSize, learningRate: lr) }
}

extension SharingMask: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }
}
