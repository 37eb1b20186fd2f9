import ArgumentParser
import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitStore
import LayerSplitRun

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
        @OptionGroup var recipe: RecipeOptions

        @Option(help: "Pretraining data: 'synthetic' (the built-in multi-domain suite, all its tasks together), or a YAML file whose 'data:' section names the data sets (a search space, or a file like search-spaces/examples-data/*.yaml).")
        var data: String = "synthetic"

        @Option(name: .shortAndLong, help: "The weights file to write.")
        var output: String = "weights.h5"

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
            let (steps, quiet) = (recipe.steps, recipe.quiet)
            let data = try Self.pretrainingData(data, tasks: recipe.tasks, seed: engine.seed)
            let spec = ModelSpec(inputShape: data[0].train.shape, units: try recipe.unitSpecs(), taskClasses: data.map(\.train.classes))
            if !quiet { print("pretraining \(spec) with every unit shared on \(data.map(\.name).joined(separator: ", "))") }
            let start = Date()
            let every = max(steps / 10, 1)
            let model = try Pretraining.train(spec: spec, train: data.map(\.train), recipe: recipe.trainingRecipe, seed: engine.seed) { step, loss in
                if !quiet && (step % every == 1 || step == steps) { print(String(format: "step %5d/%d  loss %.4f", step, steps, loss)) }
            }
            let eval = try model.evaluate(Batcher.evaluationBatches(data.map(\.test), batchSize: 256))
            // The task names are a JSON list (a name may contain a comma); numbers are numbers.
            try WeightsFile.write(model, to: output, attributes: [
                "tool_version": LayerSplitVersion.string,
                "data": String(decoding: try JSONEncoder().encode(data.map(\.name)), as: UTF8.self),
            ], integers: ["seed": Int64(bitPattern: engine.seed), "steps": Int64(steps)], reals: ["test_accuracy": eval.accuracy])
            print(String(format: "wrote %@: %d parameters, test accuracy mean %.4f (%.1fs)",
                         output, model.parameterCounts.stored, eval.meanAccuracy, Date().timeIntervalSince(start)))
        }
    }
}
