import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitSearch
import LayerSplitStore

/// Keeps the final weights of a trial the runner trained to full length.
public protocol TrialModels: AnyObject {
    /// Stores `model` as `key`'s trained model, with the accuracy per task it was evaluated at. Called before the
    /// trial is saved to the run log, so a model file never exists for a trial the log lacks for longer than
    /// the next run's start (which removes it).
    func save(_ key: TrialKey, model: MultiTaskModel, accuracy: [Double]) throws
}

/// The trained models of a run: `models/<trial id>.h5` in the run folder, one weights file per fully trained
/// trial (docs/FORMATS.md, "Trained models"). Which ones stay is the search space's `training.keep`: at the end
/// of a run, `front` removes those of masks not on the front (every seed of a front mask stays), `all` keeps
/// them all, and with `none` none is written.
///
/// Writing a model only reads the trained tensors, so keeping models never changes a trial's result.
public final class FolderModels: TrialModels {
    public let folder: String
    /// Root attributes every model of the run carries: the search space's hash, the study, the split.
    let attributes: [String: String]
    /// The per-task input normalisation (`x · scale + shift`), computed once at the first save.
    private let normalization: () throws -> [InputNormalization]
    private var cachedNormalization: [InputNormalization]?

    public init(folder: String, attributes: [String: String], normalization: @escaping () throws -> [InputNormalization]) {
        self.folder = folder
        self.attributes = attributes
        self.normalization = normalization
    }

    /// `RUN/models` of a run folder.
    public static func folder(of run: String) -> String { run + "/models" }

    /// The model file of `key` in the models folder `folder`.
    public static func path(_ key: TrialKey, in folder: String) -> String { folder + "/" + key.id + ".h5" }

    public func save(_ key: TrialKey, model: MultiTaskModel, accuracy: [Double]) throws {
        if cachedNormalization == nil { cachedNormalization = try normalization() }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw StudyError("\(folder): cannot create the folder of trained models (\(RunFolder.reason(error)))")
        }
        var text = attributes
        text["trial"] = key.id
        try TrainedModelFile.write(model, to: Self.path(key, in: folder), seed: key.seed, steps: key.steps,
                                   accuracy: accuracy, normalization: cachedNormalization ?? [], attributes: text)
    }

    /// The trials whose model files are in `folder` (files named `<trial id>.h5`).
    static func files(in folder: String) -> [(name: String, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".h5") && !$0.hasPrefix(".") }.sorted().map { ($0, folder + "/" + $0) }
    }

    /// Removes model files of trials the log lacks (a run killed between writing a model and logging its
    /// trial) and temporary files of killed writers. Only for the folder's one writer. Returns what it removed.
    @discardableResult
    public static func removeStale(in folder: String, logged: Set<TrialKey>) -> [String] {
        var removed = AtomicFile.removeStaleTemporaries(inFolder: folder, ownsFolder: true).map { folder + "/" + $0 }
        let ids = Set(logged.map(\.id))
        for (name, path) in files(in: folder) where !ids.contains(String(name.dropLast(3))) {
            if unlink(path) == 0 { removed.append(path) }
        }
        return removed
    }

    /// Applies `keep` at the end of a run: `front` removes every model file but those of `frontTrials` (the
    /// trials, every seed, of the masks on the front); `all` and `none` remove nothing. Returns how many it
    /// removed.
    @discardableResult
    public static func prune(in folder: String, keep: SearchSpace.KeepModels, frontTrials: [TrialKey]) -> Int {
        guard keep == .front else { return 0 }
        let keepIDs = Set(frontTrials.map(\.id))
        var removed = 0
        for (name, path) in files(in: folder) where !keepIDs.contains(String(name.dropLast(3))) {
            if unlink(path) == 0 { removed += 1 }
        }
        return removed
    }

    /// The exact per-task normalisation `space.data` applies (`DataSpec.load`): the same data loaded without
    /// normalisation, and the training split's statistics computed as `DataSpec` does; checked against `tasks`
    /// (the normalised data), so a stored constant is the one training used or none is stored.
    public static func inputNormalization(space: SearchSpace, tasks: [TaskData]) throws -> [InputNormalization] {
        var raw = space.data
        let kind = raw.normalize
        if kind == .none { return tasks.map { _ in InputNormalization(scale: 1, shift: 0) } }
        raw.normalize = .none
        let loaded = try raw.load(seed: 0)
        guard loaded.count == tasks.count else { return [] }
        var out: [InputNormalization] = []
        for (r, t) in zip(loaded, tasks) {
            let n = InputNormalization.of(r.train.x, kind: kind)
            // The constants must reproduce the normalised training split bit for bit.
            let sample = Array(r.train.x.prefix(4096)).map { $0 * n.scale + n.shift }
            guard sample == Array(t.train.x.prefix(4096)) else { return [] }
            out.append(n)
        }
        return out
    }
}

/// `x → x · scale + shift`: how one task's inputs were normalised (constants from its training split).
public struct InputNormalization: Sendable, Hashable {
    public var scale: Float
    public var shift: Float

    public init(scale: Float, shift: Float) {
        self.scale = scale
        self.shift = shift
    }

    /// The constants `DataSpec` computes for `kind` from training values `x` (per-task: mean and std over every
    /// value; unit: min and max).
    static func of(_ x: [Float], kind: DataSpec.Normalization) -> InputNormalization {
        switch kind {
        case .none:
            return InputNormalization(scale: 1, shift: 0)
        case .perTask:
            var sum = 0.0, sumSq = 0.0
            x.withUnsafeBufferPointer { xs in
                for v in xs { sum += Double(v); sumSq += Double(v) * Double(v) }
            }
            let n = Double(max(x.count, 1))
            let mean = sum / n
            let std = max((sumSq / n - mean * mean).squareRoot(), 1e-8)
            return InputNormalization(scale: Float(1 / std), shift: Float(-mean / std))
        case .unit:
            let lo = x.min() ?? 0, hi = x.max() ?? 1
            let range = max(hi - lo, 1e-8)
            return InputNormalization(scale: 1 / range, shift: -lo / range)
        }
    }

    /// Applies the normalisation in place.
    public func apply(to x: inout [Float]) {
        guard scale != 1 || shift != 0 else { return }
        for i in x.indices { x[i] = x[i] * scale + shift }
    }
}

/// A trained model file: a weights file (`layersplit-weights`) whose root attributes also say which trial it is
/// and what it scored, so that `layersplit evaluate` can check it and `predict` can use it without the search
/// space. The attributes are listed in docs/FORMATS.md ("Trained models").
public enum TrainedModelFile {
    /// What a trained model file says about itself beyond the weights.
    public struct Info: Sendable {
        public var weights: WeightsInfo
        /// `trial`: the trial id (`TTSS.seed1.steps200`), nil for a file of `layersplit train`.
        public var trial: String?
        public var seed: UInt64?
        public var steps: Int?
        public var searchSpaceHash: String?
        /// The accuracy per task measured when it was trained (the logged one for a search's trial).
        public var accuracy: [Double]?
        public var meanAccuracy: Double?
        public var taskNames: [String]?
        /// `evaluation`: the split the accuracy was measured on (`validation`, `test`).
        public var evaluation: String?
        /// Per task; nil when the file does not say.
        public var normalization: [InputNormalization]?
    }

    /// Writes `model` atomically with the trained-model attributes.
    public static func write(_ model: MultiTaskModel, to path: String, seed: UInt64, steps: Int, accuracy: [Double],
                             normalization: [InputNormalization], attributes: [String: String]) throws {
        var reals: [String: [Double]] = [
            "accuracy": accuracy,
            "mean_accuracy": [accuracy.isEmpty ? .nan : accuracy.reduce(0, +) / Double(accuracy.count)],
        ]
        if normalization.count == model.spec.taskCount {
            reals["input_scale"] = normalization.map { Double($0.scale) }
            reals["input_shift"] = normalization.map { Double($0.shift) }
        }
        try WeightsFile.write(model, to: path, attributes: attributes,
                              integers: ["seed": Int64(bitPattern: seed), "steps": Int64(steps)], reals: reals)
    }

    /// The JSON text of task names, as the `task_names` attribute holds them.
    public static func taskNamesJSON(_ names: [String]) -> String {
        (try? JSONEncoder().encode(names)).flatMap { String(data: $0, encoding: .utf8) } ?? "[]"
    }

    /// Reads the weights info and the trained-model attributes (each nil when absent).
    public static func info(_ path: String) throws -> Info {
        let weights = try WeightsFile.info(path)
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        let a = weights.attributes
        let names = a["task_names"].flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) }
        var normalization: [InputNormalization]?
        if let scale = (try? file.attributeValues(Double.self, "input_scale")).flatMap({ $0 }),
           let shift = (try? file.attributeValues(Double.self, "input_shift")).flatMap({ $0 }), scale.count == shift.count {
            normalization = zip(scale, shift).map { InputNormalization(scale: Float($0), shift: Float($1)) }
        }
        let seed = (try? file.attribute(Int64.self, "seed")).flatMap { $0 }.map { UInt64(bitPattern: $0) }
        let steps = (try? file.attribute(Int64.self, "steps")).flatMap { $0 }.map { Int($0) }
        return Info(weights: weights, trial: a["trial"], seed: seed, steps: steps, searchSpaceHash: a["search_space_hash"],
                    accuracy: (try? file.attributeValues(Double.self, "accuracy")).flatMap { $0 },
                    meanAccuracy: (try? file.attributeValues(Double.self, "mean_accuracy")).flatMap { $0 }?.first,
                    taskNames: names, evaluation: a["evaluation"], normalization: normalization)
    }
}
