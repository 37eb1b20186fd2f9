import ArgumentParser
import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitStore
import LayerSplitStudy

extension LayerSplitCommand {
    /// Trains the backbone with every unit shared, on all the tasks together, and writes a weights file that
    /// later runs start from (`layersplit train --init weights.h5`).
    struct Pretrain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pretrain the backbone (every unit shared) on the union of the tasks and write a weights file.",
            discussion: """
                Later runs start from it with `layersplit train --init FILE`: shared units take the pretrained \
                weights and every task-specific copy starts from the same shared weights (Zhang et al.). \
                The file's layout is documented in docs/FORMATS.md.
                """)

        @OptionGroup var engine: EngineOptions

        @Option(help: "Units, comma-separated: linear:WIDTH, conv:CHANNELS[:sN][:pool], residual:CHANNELS[:sN]. Must match the later runs.")
        var units: String = "linear:128,linear:128,linear:128,linear:128"

        @Option(help: "Pretraining data: 'synthetic' (the built-in multi-domain suite, all its tasks together), or a YAML file whose 'data:' section names the data sets (a search space, or a file like search-spaces/examples-data/*.yaml).")
        var data: String = "synthetic"

        @Option(help: "Number of tasks (domains) of the synthetic suite.")
        var tasks: Int = 4

        @Option(help: "Training steps (one batch of every task per step).")
        var steps: Int = 300

        @Option(help: "Examples per task per step.")
        var batchSize: Int = 32

        @Option(help: "Learning rate (SGD with momentum 0.9, cosine schedule).")
        var lr: Float = 0.05

        @Option(name: .shortAndLong, help: "The weights file to write.")
        var output: String = "weights.h5"

        @Flag(help: "Print only the final result.")
        var quiet = false

        func validate() throws {
            guard tasks >= 1 else { throw ValidationError("--tasks must be at least 1") }
            guard steps >= 1, batchSize >= 1 else { throw ValidationError("--steps and --batch-size must be positive") }
        }

        /// The pretraining data: the built-in suite, or the tasks of a YAML file's `data:` section.
        static func pretrainingData(_ name: String, tasks: Int, seed: UInt64) throws -> [TaskData] {
            if name == "synthetic" { return SyntheticSuite.multiDomain(tasks: tasks, features: 64, seed: seed) }
            guard name.hasSuffix(".yaml") || name.hasSuffix(".yml") || name.hasSuffix(".json") else {
                throw ValidationError("--data '\(name)': give 'synthetic' or a YAML file with a 'data:' section")
            }
            return try DataSpec.load(file: name).load(seed: seed)
        }

        func run() throws {
            engine.apply()
            let unitSpecs = try units.split(separator: ",").map { try UnitSpec(parsing: String($0)) }
            let data = try Self.pretrainingData(data, tasks: tasks, seed: engine.seed)
            let spec = ModelSpec(inputShape: data[0].train.shape, units: unitSpecs, taskClasses: data.map(\.train.classes))
            let recipe = TrainingRecipe(steps: steps, batchSize: batchSize, learningRate: lr)
            if !quiet { print("pretraining \(spec) with every unit shared on \(data.map(\.name).joined(separator: ", "))") }
            let start = Date()
            let every = max(steps / 10, 1)
            let model = try Pretraining.train(spec: spec, train: data.map(\.train), recipe: recipe, seed: engine.seed) { step, loss in
                if !quiet && (step % every == 1 || step == steps) { print(String(format: "step %5d/%d  loss %.4f", step, steps, loss)) }
            }
            let eval = try model.evaluate(Batcher.evaluationBatches(data.map(\.test), batchSize: 256))
            try WeightsFile.write(model, to: output, attributes: [
                "tool_version": LayerSplitVersion.string, "data": data.map(\.name).joined(separator: ","),
                "seed": String(engine.seed), "steps": String(steps),
                "test_accuracy": eval.accuracy.map { String(format: "%.4f", $0) }.joined(separator: ","),
            ])
            print(String(format: "wrote %@: %d parameters, test accuracy mean %.4f (%.1fs)",
                         output, model.parameterCounts.stored, eval.meanAccuracy, Date().timeIntervalSince(start)))
        }
    }
}
