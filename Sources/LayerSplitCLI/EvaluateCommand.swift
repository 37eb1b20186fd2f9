import ArgumentParser
import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitRun
import LayerSplitStore

extension LayerSplitCommand {
    /// Measures a weights file on a search space's held-out data, as the search measured its trials.
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a model file's accuracy per task on a search space's evaluation split.",
            discussion: """
                Loads the data as the search did (the space's data section, data seed 0, its 'evaluation:' split) \
                and evaluates every task in inference mode with the trainer's own evaluation. For a model \
                exported from that search, the numbers equal the logged ones (same --threads).
                Example: layersplit evaluate model.h5 search-spaces/families.yaml
                """)

        @Argument(help: "A weights file (from 'layersplit export', a run's models/, 'train --output').") var model: String
        @Argument(help: "The search-space file (YAML) whose data to evaluate on.") var space: String
        @OptionGroup var threading: ThreadOptions

        func run() throws {
            try reportingErrors {
                threading.apply()
                let space = try SearchSpace.load(self.space)
                let info = try TrainedModelFile.info(model)
                let tasks = try space.data.load(seed: 0)
                guard let first = tasks.first else { throw StudyError("\(self.space): the data section gives no tasks") }
                let spec = space.modelSpec(inputShape: first.train.shape, classes: tasks.map(\.train.classes))
                guard info.weights.spec.taskCount == spec.taskCount else {
                    throw InputError("\(model): the model has \(info.weights.spec.taskCount) task(s) but \(self.space) has \(spec.taskCount); evaluate it on the search space it was trained for")
                }
                guard info.weights.spec == spec else {
                    throw InputError("\(model): the model is '\(info.weights.spec)' but \(self.space) builds '\(spec)'; evaluate it on the search space it was trained for")
                }
                let network = try WeightsFile.makeModel(from: model)
                let sets = tasks.map { space.evaluation == .test ? $0.test : $0.validation }
                let eval = try network.evaluate(Batcher.evaluationBatches(sets, batchSize: 256))

                print("\(model): mask \(network.mask)\(info.trial.map { ", trial \($0)" } ?? ""); \(space.evaluation.rawValue) split of \(self.space) (\(sets.map { String($0.count) }.joined(separator: "/")) examples)")
                if let hash = info.searchSpaceHash, hash != space.hash {
                    print("note: the model was trained under another version of this file (\(hash), the file is \(space.hash)); logged numbers may not apply")
                }
                if let split = info.evaluation, split != space.evaluation.rawValue {
                    print("note: the logged accuracy was measured on the \(split) split, this on the \(space.evaluation.rawValue) split")
                }
                let logged = info.accuracy.flatMap { $0.count == eval.accuracy.count ? $0 : nil }
                let width = max(tasks.map(\.name.count).max() ?? 4, 4) + 2
                func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count), withPad: " ", startingAt: 0) }
                print(pad("task", width) + pad("accuracy", 10) + (logged == nil ? "" : pad("logged", 10) + "difference"))
                for (t, task) in tasks.enumerated() {
                    var line = pad(task.name, width) + pad(String(format: "%.4f", eval.accuracy[t]), 10)
                    if let logged { line += pad(String(format: "%.4f", logged[t]), 10) + String(format: "%+.6f", eval.accuracy[t] - logged[t]) }
                    print(line)
                }
                var mean = pad("mean", width) + pad(String(format: "%.4f", eval.meanAccuracy), 10)
                if let logged {
                    let m = logged.reduce(0, +) / Double(max(logged.count, 1))
                    mean += pad(String(format: "%.4f", m), 10) + String(format: "%+.6f", eval.meanAccuracy - m)
                }
                print(mean)
            }
        }
    }
}
