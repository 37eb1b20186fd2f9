import ArgumentParser
import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitStore

extension LayerSplitCommand {
    /// Trains one multi-task model for one mask on the built-in synthetic multi-domain suite.
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train one multi-task model for one sharing mask on the built-in synthetic suite.",
            discussion: """
                The mask has one letter per unit, input to output: S = shared, T = task-specific. \
                Heads are always task-specific. Example: layersplit train --mask TTSS --steps 300
                """)

        @OptionGroup var engine: EngineOptions

        @Option(help: "Sharing mask, one letter per unit (S shared, T task-specific).")
        var mask: String = "TSSS"

        @Option(help: "Units, comma-separated: linear:WIDTH, conv:CHANNELS[:sN][:pool], residual:CHANNELS[:sN].")
        var units: String = "linear:128,linear:128,linear:128,linear:128"

        @Option(help: "Number of tasks (domains) in the synthetic suite.")
        var tasks: Int = 4

        @Option(help: "Training steps (one batch of every task per step).")
        var steps: Int = 300

        @Option(help: "Examples per task per step.")
        var batchSize: Int = 32

        @Option(help: "Learning rate (SGD with momentum 0.9, cosine schedule).")
        var lr: Float = 0.05

        @Flag(help: "Print only the final result.")
        var quiet = false

        @Option(name: .customLong("init"),
                help: "Start from pretrained weights (a weights file from `layersplit pretrain`): task-specific copies start from the shared weights.")
        var initWeights: String?

        func validate() throws {
            guard tasks >= 1 else { throw ValidationError("--tasks must be at least 1") }
            guard steps >= 1, batchSize >= 1 else { throw ValidationError("--steps and --batch-size must be positive") }
        }

        func run() throws {
            engine.apply()
            let unitSpecs = try units.split(separator: ",").map { try UnitSpec(parsing: String($0)) }
            let mask = try SharingMask(parsing: self.mask)
            let data = SyntheticSuite.multiDomain(tasks: tasks, features: 64, seed: engine.seed)
            let spec = ModelSpec(inputShape: data[0].train.shape, units: unitSpecs,
                                 taskClasses: data.map(\.train.classes))
            var rng = SplitMix64(seed: engine.seed).derived(1)
            let model = try MultiTaskModel(spec: spec, mask: mask, rng: &rng)
            if let initWeights {
                try WeightsFile.initialise(model, from: initWeights)
                if !quiet { print("initialised from \(initWeights)") }
            }
            let recipe = TrainingRecipe(steps: steps, batchSize: batchSize, learningRate: lr)
            let trainer = recipe.trainer(for: model)
            let batcher = Batcher(tasks: data.map(\.train), batchSize: batchSize, seed: engine.seed &+ 2)
            let counts = model.parameterCounts
            if !quiet {
                print("model: \(spec)")
                print("mask \(mask): \(counts.stored) stored parameters (shared \(counts.shared), specific \(counts.specific), heads \(counts.heads))")
            }
            let start = Date()
            let every = max(steps / 10, 1)
            for step in 0..<steps {
                let losses = try trainer.step(batcher.next())
                if !quiet && (step % every == 0 || step == steps - 1) {
                    let mean = losses.reduce(0, +) / Float(losses.count)
                    print(String(format: "step %5d/%d  loss %.4f", step + 1, steps, mean))
                }
            }
            let eval = try trainer.evaluate(Batcher.evaluationBatches(data.map(\.test), batchSize: 256))
            let accs = eval.accuracy.map { String(format: "%.3f", $0) }.joined(separator: " ")
            print(String(format: "mask %@  params %d  test accuracy per task [%@]  mean %.4f  (%.1fs)",
                         mask.description, counts.stored, accs, eval.meanAccuracy, Date().timeIntervalSince(start)))
        }
    }
}
