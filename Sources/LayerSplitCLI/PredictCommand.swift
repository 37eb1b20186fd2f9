import ArgumentParser
import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitRun
import LayerSplitStore

extension LayerSplitCommand {
    /// Class scores of one task's head for new inputs.
    struct Predict: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write one task's class scores for new inputs (an IDX file or an HDF5 dataset).",
            discussion: """
                INPUT holds examples of the task's domain, N x (the model's input shape): an IDX file (uint8 \
                pixels become v / 255, as the data reader does) or an HDF5 file (--dataset, default /x). They are \
                normalised with the task's training statistics, which a search's model file carries \
                (@input_scale, @input_shift; otherwise give --space). The task's input transforms are not \
                applied: the inputs are already of its domain. Writes logits (--softmax: probabilities) \
                [N, classes] to an HDF5 file (/scores, /predicted) or a CSV file.
                Example: layersplit predict model.h5 --task fashion images-idx3-ubyte -o scores.h5
                """)

        @Argument(help: "A weights file (from 'layersplit export', a run's models/, 'train --output').") var model: String
        @Option(help: "The task: its name (as the search space names it) or its index from 0.") var task: String
        @Argument(help: "The inputs: an IDX file, or an HDF5 file (with --dataset).") var input: String
        @Option(help: "The inputs' dataset in an HDF5 INPUT.") var dataset: String = "/x"
        @Option(help: "The search space, for the normalisation when the model file does not carry it.") var space: String?
        @Flag(help: "Write softmax probabilities instead of logits.") var softmax = false
        @Option(name: .shortAndLong, help: "Where to write the scores: FILE.h5 or FILE.csv.") var output: String
        @OptionGroup var threading: ThreadOptions

        func validate() throws {
            guard output.hasSuffix(".h5") || output.hasSuffix(".hdf5") || output.hasSuffix(".csv") else {
                throw ValidationError("-o \(output): give a .h5 or .csv file")
            }
        }

        func run() throws {
            try reportingErrors {
                threading.apply()
                let info = try TrainedModelFile.info(model)
                let spec = info.weights.spec
                let names = info.taskNames ?? (0..<spec.taskCount).map { "t\($0)" }
                guard let t = names.firstIndex(of: task) ?? Int(task).flatMap({ (0..<spec.taskCount).contains($0) ? $0 : nil }) else {
                    throw InputError("--task \(task): the model's tasks are \(names.joined(separator: ", ")) (or their index from 0)")
                }
                let normalization = try taskNormalization(info, task: t)
                var (x, count) = try readInputs(spec: spec)
                normalization.apply(to: &x)
                let network = try WeightsFile.makeModel(from: model)
                let classes = spec.taskClasses[t]
                let scores = try Self.scores(network, task: t, x: x, count: count, softmax: softmax)
                try write(scores, count: count, classes: classes, taskName: names[t])
                let predicted = Self.argmax(scores, classes: classes)
                let histogram = (0..<classes).map { c in predicted.filter { $0 == c }.count }
                print("wrote \(output): \(count) x \(classes) \(softmax ? "probabilities" : "logits") of task \(names[t]) (mask \(network.mask)); predicted classes: \(histogram.map(String.init).joined(separator: " "))")
            }
        }

        /// The task's normalisation: from the model file, else from --space, else a refusal saying so.
        func taskNormalization(_ info: TrainedModelFile.Info, task t: Int) throws -> InputNormalization {
            if let n = info.normalization, n.count == info.weights.spec.taskCount { return n[t] }
            guard let space else {
                throw InputError("\(model): carries no input normalisation (@input_scale, @input_shift); give --space SPACE.yaml, the search space the model was trained on")
            }
            let s = try SearchSpace.load(space)
            let tasks = try s.data.load(seed: 0)
            guard tasks.count == info.weights.spec.taskCount else {
                throw InputError("\(space) has \(tasks.count) task(s) but \(model) has \(info.weights.spec.taskCount)")
            }
            let n = try FolderModels.inputNormalization(space: s, tasks: tasks)
            guard n.count == tasks.count else { throw StudyError("\(space): cannot recover the normalisation of its data") }
            return n[t]
        }

        /// The inputs as floats, row-major, and their count; checked against the model's input shape.
        func readInputs(spec: ModelSpec) throws -> ([Float], Int) {
            var x: [Float]
            var dims: [Int]
            if HDF5File.isHDF5(input) {
                let file = try HDF5File(opening: input)
                defer { try? file.close() }
                let d = try file.info(of: dataset)
                dims = d.shape
                x = d.elementType == .uint8 ? try file.readUInt8(dataset).values.map { Float($0) / 255 } : try file.readFloats(dataset).values
            } else {
                let array: IDXArray
                do { array = try IDX.read(contentsOf: input) } catch {
                    throw InputError("\(input): neither an HDF5 file nor an IDX file (\(error))")
                }
                dims = array.shape
                x = array.floatValues(bytesToUnit: true)
            }
            guard let count = dims.first, dims.count >= 2 else {
                throw InputError("\(input): inputs need shape N x \(spec.inputShape.map(String.init).joined(separator: " x ")); got \(dims)")
            }
            let row = dims.dropFirst().reduce(1, *)
            let expected = spec.inputShape.reduce(1, *)
            // [H, W] images are [H, W, 1]; a flat model input takes any shape of that size.
            let shape = dims.count == 3 ? Array(dims.dropFirst()) + [1] : Array(dims.dropFirst())
            guard row == expected, shape == spec.inputShape || spec.inputShape.count == 1 else {
                throw InputError("\(input): examples of shape \(Array(dims.dropFirst())) but the model takes \(spec.inputShape)")
            }
            return (x, count)
        }

        /// Task `t`'s logits (or probabilities) for `count` rows of `x`, 256 rows a batch, in inference mode.
        static func scores(_ model: MultiTaskModel, task t: Int, x: [Float], count: Int, softmax: Bool) throws -> [Float] {
            let classes = model.spec.taskClasses[t]
            let row = model.spec.inputShape.reduce(1, *)
            var out = [Float](repeating: 0, count: count * classes)
            for start in stride(from: 0, to: count, by: 256) {
                let n = min(256, count - start)
                let inputs = Tensor(zeros: [n] + model.spec.inputShape)
                x.withUnsafeBufferPointer { (inputs.data).update(from: $0.baseAddress! + start * row, count: n * row) }
                let segments = (0..<model.spec.taskCount).map { $0 == t ? 0..<n : ($0 < t ? 0..<0 : n..<n) }
                try model.forward(TaskBatch(inputs: inputs, labels: Array(repeating: 0, count: n), segments: segments), training: false)
                let logits = model.logits[t]
                for i in 0..<n {
                    let z = logits.data + i * classes
                    var values = (0..<classes).map { z[$0] }
                    if softmax {
                        let m = values.max() ?? 0
                        values = values.map { Float(exp(Double($0 - m))) }
                        let sum = values.reduce(0, +)
                        values = values.map { $0 / sum }
                    }
                    for c in 0..<classes { out[(start + i) * classes + c] = values[c] }
                }
            }
            return out
        }

        /// The arg-max class of each row (the first on ties, as the trainer's accuracy counts).
        static func argmax(_ scores: [Float], classes: Int) -> [Int] {
            stride(from: 0, to: scores.count, by: classes).map { r in
                var best = 0
                for c in 1..<classes where scores[r + c] > scores[r + best] { best = c }
                return best
            }
        }

        func write(_ scores: [Float], count: Int, classes: Int, taskName: String) throws {
            let predicted = Self.argmax(scores, classes: classes)
            if output.hasSuffix(".csv") {
                var text = "predicted," + (0..<classes).map { "class\($0)" }.joined(separator: ",") + "\n"
                for r in 0..<count {
                    text += "\(predicted[r])," + (0..<classes).map { String(scores[r * classes + $0]) }.joined(separator: ",") + "\n"
                }
                try AtomicFile.write(Data(text.utf8), to: output)
                return
            }
            try HDF5File.writeAtomically(to: output) { file in
                try file.setAttribute("scores", softmax ? "softmax" : "logits")
                try file.setAttribute("task", taskName)
                try file.setAttribute("model", (model as NSString).lastPathComponent)
                try file.write(scores, shape: [count, classes], to: "/scores")
                try file.write(predicted.map { Int64($0) }, shape: [count], to: "/predicted")
            }
        }
    }
}
