import ArgumentParser
import Foundation
import LayerSplitEngine
import LayerSplitStore

extension LayerSplitCommand.Bench {
    /// LayerSplit's half of the PyTorch interoperability check (scripts/check_interop.py): loads weights
    /// written by PyTorch, runs a fixed batch, trains a few SGD steps and writes what it saw.
    struct Interop: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a fixed batch through weights from a file and train a few SGD steps (for scripts/check_interop.py).",
            shouldDisplay: false)

        @Option(help: "Weights file (its model description and mask build the model).") var weights: String
        @Option(help: "Batch file: /x float32 [N, ...] (NHWC images or feature rows), /y int [N], /rows_per_task int [T].")
        var batch: String
        @Option(help: "Output file: /logits/t<k> (training-mode forward before any step), /losses [steps] (before each step), /final_loss.")
        var out: String
        @Option(help: "Write the trained weights here.") var weightsOut: String?
        @Option(help: "SGD steps.") var steps: Int = 10
        @Option(help: "Learning rate.") var lr: Float = 0.01
        @Option(help: "Momentum.") var momentum: Float = 0.9

        func run() throws {
            Threads.set(1)
            let model = try WeightsFile.makeModel(from: weights)
            let b = try HDF5File(opening: batch)
            let x = try b.readTensor("/x")
            let labels = try b.readInt64("/y").values.map { Int32($0) }
            let rows = try b.readInt64("/rows_per_task").values.map { Int($0) }
            try b.close()
            var segments: [Range<Int>] = []
            var start = 0
            for r in rows { segments.append(start ..< start + r); start += r }
            let taskBatch = TaskBatch(inputs: x, labels: labels, segments: segments)
            try taskBatch.validate(for: model.spec)

            let o = try HDF5File(creating: out, overwrite: true)
            defer { try? o.close() }
            try model.forward(taskBatch, training: true)
            for (t, logits) in model.logits.enumerated() { try o.write(logits, to: "/logits/t\(t)") }
            let trainer = Trainer(model: model, optimizer: SGD(parameters: model.parameters, momentum: momentum, weightDecay: 0),
                                  schedule: .constant(lr))
            var losses: [Double] = []
            for _ in 0..<steps { losses.append(Double(try trainer.step(taskBatch).reduce(0, +))) }
            try o.write(losses, to: "/losses")
            let final = try model.losses(taskBatch, training: true).reduce(0, +)
            try o.write([Double(final)], shape: [], to: "/final_loss")
            try o.close()
            if let weightsOut { try WeightsFile.write(model, to: weightsOut, attributes: ["tool_version": LayerSplitVersion.string]) }
            print(String(format: "interop: %@ mask %@: loss %.6f → %.6f after %d steps", model.spec.description,
                         model.mask.description, losses.first ?? .nan, final, steps))
        }
    }
}
