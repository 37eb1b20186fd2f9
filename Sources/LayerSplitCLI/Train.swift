import ArgumentParser
import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitRun
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
        @OptionGroup var recipe: RecipeOptions

        @Option(help: "Sharing mask, one letter per unit (S shared, T task-specific, A shared plus a per-task adapter).")
        var mask: String = "TSSS"

        @Option(name: .customLong("init"),
                help: "Start from pretrained weights (a weights file from `layersplit pretrain`): task-specific copies start from the shared weights.")
        var initWeights: String?

        @Option(name: .shortAndLong, help: "Write the trained model to this weights file (h5py, PyTorch via scripts/h5_to_torch.py; 'layersplit predict' uses it).")
        var output: String?

        func run() throws {
            try reportingErrors { try train() }
        }

        /// The mask, or a one-line refusal (exit status 2) naming what is wrong with it.
        func parsedMask(units: Int) throws -> SharingMask {
            let shown = String(self.mask.debugDescription.dropFirst().dropLast())
            do {
                let mask = try SharingMask(parsing: self.mask)
                try mask.validate(units: units)
                return mask
            } catch {
                let why = "\(error)"
                let prefix = "mask '\(self.mask)': "
                throw InputError("--mask '\(shown)': " + (why.hasPrefix(prefix) ? String(why.dropFirst(prefix.count)) : why))
            }
        }

        func train() throws {
            engine.apply()
            let (steps, quiet) = (recipe.steps, recipe.quiet)
            let mask = try parsedMask(units: try recipe.unitSpecs().count)
            let data = SyntheticSuite.multiDomain(tasks: recipe.tasks, features: 64, seed: engine.seed)
            if let small = data.map(\.train.count).min(), recipe.batchSize > small {
                throw InputError("--batch-size \(recipe.batchSize) is larger than each task's training set of \(small) examples; use at most \(small)")
            }
            let spec = ModelSpec(inputShape: data[0].train.shape, units: try recipe.unitSpecs(),
                                 taskClasses: data.map(\.train.classes))
            var rng = SplitMix64(seed: engine.seed).derived(1)
            let model = try MultiTaskModel(spec: spec, mask: mask, rng: &rng)
            if let initWeights {
                for skipped in try WeightsFile.initialise(model, from: initWeights) {
                    FileHandle.standardError.write(Data("warning: \(skipped)\n".utf8))
                }
                if !quiet { print("initialised from \(initWeights)") }
            }
            let trainer = recipe.trainingRecipe.trainer(for: model)
            let batcher = Batcher(tasks: data.map(\.train), batchSize: recipe.batchSize, seed: engine.seed &+ 2)
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
            if let output {
                // The synthetic suite is used as generated (not normalised): the identity normalisation.
                try TrainedModelFile.write(model, to: output, seed: engine.seed, steps: steps, accuracy: eval.accuracy,
                                           normalization: data.map { _ in InputNormalization(scale: 1, shift: 0) },
                                           attributes: ["evaluation": "test", "data": "synthetic multi-domain, \(recipe.tasks) tasks, seed \(engine.seed)",
                                                        "task_names": TrainedModelFile.taskNamesJSON(data.map(\.name))])
                if !quiet { print("wrote \(output)") }
            }
        }
    }
}
