import Foundation
import LayerSplitEngine

/// The `data:` section of a search space: which tasks a study trains and how each is built. docs/DATA.md
/// documents the schema; `DataSpec(node:file:)` parses it and `load(seed:)` builds the tasks.
///
/// A task is built in this order: read its source (train and test splits); carve the validation split out of
/// train (class-stratified, seeded by the data seed and the source, so tasks built from one source share
/// their splits); apply the label function; subsample; apply the input transforms; normalise with constants
/// from the task's own training split.
public struct DataSpec: Sendable, Equatable {
    /// How inputs are scaled once a task is built. Constants come from the task's training split only.
    public enum Normalization: String, Sendable, CaseIterable {
        /// `(v − mean) / std` with the training split's mean and standard deviation over all values.
        case perTask = "per-task"
        /// `(v − min) / (max − min)`, into [0, 1] with the training split's extremes (for uint8 pixels, read as
        /// v / 255, that is the identity whenever both 0 and 255 occur).
        case unit
        /// As read (uint8 pixels as v / 255, other types as stored) and transformed.
        case none
    }

    /// A built-in synthetic suite instead of tasks read from files.
    public struct Synthetic: Sendable, Hashable {
        public enum Kind: String, Sendable, CaseIterable {
            case multiDomain = "multi-domain", multiTask = "multi-task"
        }
        public var kind: Kind
        public var tasks = 4
        /// Classes per task (default 10 for multi-domain, 4 for multi-task).
        public var classes: Int?
        public var features = 64
        public var train = 512
        public var test = 256
        public var noise: Float = 2
        /// Multi-task only: input clusters that the tasks' label functions group into classes (default 16).
        public var clusters: Int?

        public init(kind: Kind) { self.kind = kind }

        /// The suite's tasks for `seed`, with `validation` examples per task drawn from the same distribution.
        public func make(seed: UInt64, validation: Int = 0) -> [TaskData] {
            switch kind {
            case .multiDomain:
                SyntheticSuite.multiDomain(tasks: tasks, classes: classes ?? 10, features: features, trainPerTask: train,
                                           testPerTask: test, noise: noise, validationPerTask: validation, seed: seed)
            case .multiTask:
                SyntheticSuite.multiTask(tasks: tasks, classes: classes ?? 4, clusters: clusters ?? 16, features: features,
                                         trainPerTask: train, testPerTask: test, noise: noise, validationPerTask: validation,
                                         seed: seed)
            }
        }
    }

    public var normalize: Normalization = .perTask
    /// The fraction of each task's training split carved out as its validation split, in [0, 1).
    public var validation: Double = 0.1
    /// When set, the data seed, whatever seed `load(seed:)` is given: the study's runs then differ only in
    /// initialisation and batch order, not in splits, subsamples or synthetic data.
    public var seed: UInt64?
    /// The tasks read from files; empty when `synthetic` is set.
    public var tasks: [TaskSpec] = []
    public var synthetic: Synthetic?
    /// The search-space file (for messages) and the folder relative paths were resolved against.
    public var file: String = "<memory>"
    public var baseDirectory: String = FileManager.default.currentDirectoryPath
    /// Where the section itself was written, for errors about it as a whole.
    public var location: SpecLocation?

    public init(tasks: [TaskSpec], normalize: Normalization = .perTask, validation: Double = 0.1, seed: UInt64? = nil) {
        self.tasks = tasks
        self.normalize = normalize
        self.validation = validation
        self.seed = seed
    }

    public init(synthetic: Synthetic, normalize: Normalization = .perTask, validation: Double = 0.1, seed: UInt64? = nil) {
        self.synthetic = synthetic
        self.normalize = normalize
        self.validation = validation
        self.seed = seed
    }

    /// The number of tasks the section declares.
    public var taskCount: Int { synthetic?.tasks ?? tasks.count }

    /// The section's tasks, built for `seed` (or `self.seed` when set): train, validation and test splits,
    /// normalised. Sources read before are taken from `cache` when given.
    ///
    /// Throws `DataError.spec` naming the file, line and field for anything wrong with one task (a missing
    /// folder says how to get the data), and `DataError.invalid` when the tasks do not fit one model (different
    /// input shapes).
    public func load(seed runSeed: UInt64, cache: SourceCache? = nil) throws -> [TaskData] {
        let seed = self.seed ?? runSeed
        let cache = cache ?? SourceCache()
        var built: [TaskData]
        if let synthetic {
            // Synthetic data is unlimited: the validation split is drawn fresh (validation x train examples)
            // rather than carved out, so `train` stays the number of training examples.
            let extra = Int((validation * Double(synthetic.train)).rounded())
            built = synthetic.make(seed: seed, validation: extra).map { normalized($0) }
        } else {
            guard !tasks.isEmpty else { throw sectionError("no tasks: give 'tasks:' (a list) or 'synthetic:'") }
            built = try tasks.enumerated().map { t, spec in try build(spec, index: t, seed: seed, cache: cache) }
        }
        if let first = built.first, let odd = built.first(where: { $0.shape != first.shape }) {
            let problem = "task '\(odd.name)' has inputs of shape \(odd.shape) but task '\(first.name)' has \(first.shape); all tasks feed one model, so their input shapes must agree (a rotation by 90 degrees of a non-square image changes it)"
            if let spec = tasks.first(where: { $0.name == odd.name }) { throw spec.error("source", problem) }
            throw sectionError(problem)
        }
        return built
    }

    /// Checks that every task's source exists, without reading it (cheap; `load` checks everything).
    public func checkSources() throws {
        for task in tasks {
            try task.wrap("source") {
                switch task.source {
                case let .idx(folder): _ = try IDXFolder.files(in: folder)
                case let .hdf5(file, _, _, _, _, _, _):
                    guard FileManager.default.fileExists(atPath: file) else {
                        throw DataError.file(path: file, problem: "no such file")
                    }
                }
            }
        }
    }

    func sectionError(_ problem: String) -> DataError {
        location?.error(problem) ?? .invalid("data: \(problem)")
    }

    // MARK: - Building one task

    private func build(_ spec: TaskSpec, index t: Int, seed: UInt64, cache: SourceCache) throws -> TaskData {
        let raw = try spec.wrap("source") { try cache.splits(of: spec.source, classes: spec.classes, seed: seed) }
        // The validation split: the same for every task of this source and seed.
        let sourceSeed = SplitMix64(seed: seed).derived(Sampling.stableHash(raw.key))
        let carved = cache.validationSplit(of: raw, fraction: validation, seed: sourceSeed.derived(1).state)
        var test = raw.test
        var parts = [carved.train, carved.validation]
        // Label function.
        if spec.labels != .identity {
            parts = try spec.wrap("labels") { try parts.map { try spec.labels.apply(to: $0) } }
            test = try spec.wrap("labels") { try spec.labels.apply(to: test) }
        }
        // Subsampling, stratified and seeded by the source and the label function (so that tasks of one source
        // and one label function keep the same examples).
        let sampleSeed = sourceSeed.derived(Sampling.stableHash("subsample " + spec.labels.description))
        func sample(_ set: LabeledSet, _ count: Int?, _ split: String, _ stream: UInt64) throws -> LabeledSet {
            guard let count else { return set }
            guard count <= set.count else {
                throw spec.error("subsample", "asks for \(count) \(split) examples but the \(split) split has \(set.count)"
                    + (split == "train" && validation > 0 ? " after carving out the validation split" : ""))
            }
            let keep = Sampling.stratifiedSample(labels: set.y, classes: set.classes, count: count,
                                                 seed: sampleSeed.derived(stream).state)
            return set.subset(keep)
        }
        var trainSet = try sample(parts[0], spec.subsample.train, "train", 1)
        var validationSet = try sample(parts[1], spec.subsample.validation, "validation", 2)
        var testSet = try sample(test, spec.subsample.test, "test", 3)
        // Input transforms; noise without a seed of its own draws from the data seed, the task and the split.
        let taskSeed = SplitMix64(seed: seed).derived(0x7461_736B &+ UInt64(t))
        for (k, transform) in spec.transforms.enumerated() {
            try spec.wrap("transform") {
                trainSet = try transform.apply(to: trainSet, seed: taskSeed.derived(UInt64(3 * k + 1)).state)
                validationSet = try transform.apply(to: validationSet, seed: taskSeed.derived(UInt64(3 * k + 2)).state)
                testSet = try transform.apply(to: testSet, seed: taskSeed.derived(UInt64(3 * k + 3)).state)
            }
        }
        guard trainSet.count > 0 else { throw spec.error("source", "the task has no training examples") }
        guard trainSet.classes >= 2 else {
            throw spec.error("labels", "the task has \(trainSet.classes) class; a task needs at least 2")
        }
        trainSet.name = "\(spec.name)/train"
        validationSet.name = "\(spec.name)/validation"
        testSet.name = "\(spec.name)/test"
        let task = TaskData(name: spec.name, train: trainSet, validation: validationSet, test: testSet,
                            provenance: TaskProvenance(
                                source: spec.source.description,
                                transform: spec.transforms.isEmpty ? "none" : spec.transforms.map(\.description).joined(separator: ", "),
                                labels: spec.labels.description))
        return normalized(task)
    }

    /// The task with this section's normalisation applied to every split, constants from its training split.
    private func normalized(_ task: TaskData) -> TaskData {
        var task = task
        let (scale, shift, text) = normalization(of: task.train)
        if scale != 1 || shift != 0 {
            for keyPath in [\TaskData.train, \TaskData.validation, \TaskData.test] {
                task[keyPath: keyPath].x = Self.affine(task[keyPath: keyPath].x, scale: scale, shift: shift)
            }
        }
        task.provenance.normalization = text
        return task
    }

    /// `v → v · scale + shift` for this section's normalisation, from the training split's statistics.
    private func normalization(of train: LabeledSet) -> (scale: Float, shift: Float, text: String) {
        switch normalize {
        case .none:
            return (1, 0, "none")
        case .perTask:
            var sum = 0.0, sumSq = 0.0
            train.x.withUnsafeBufferPointer { xs in
                for v in xs { sum += Double(v); sumSq += Double(v) * Double(v) }
            }
            let n = Double(max(train.x.count, 1))
            let mean = sum / n
            let std = max((sumSq / n - mean * mean).squareRoot(), 1e-8)
            return (Float(1 / std), Float(-mean / std), String(format: "per-task mean %.4f std %.4f", mean, std))
        case .unit:
            let lo = train.x.min() ?? 0, hi = train.x.max() ?? 1
            let range = max(hi - lo, 1e-8)
            return (1 / range, -lo / range, String(format: "unit min %.4f max %.4f", lo, hi))
        }
    }

    static func affine(_ x: [Float], scale: Float, shift: Float) -> [Float] {
        [Float](unsafeUninitializedCapacity: x.count) { out, initialized in
            x.withUnsafeBufferPointer { xs in
                for i in 0..<xs.count { out[i] = xs[i] * scale + shift }
            }
            initialized = x.count
        }
    }
}

/// Sources read once and shared by every task built from them (and by later loads given the same cache):
/// reading Fashion-MNIST takes about a second, and tasks built from one source share its arrays.
public final class SourceCache: @unchecked Sendable {
    /// A source's train and test splits as read, and a key that identifies it.
    struct Splits {
        var key: String
        var train: LabeledSet
        var test: LabeledSet
    }

    private var sources: [String: Splits] = [:]
    private var splits: [String: (LabeledSet, LabeledSet)] = [:]
    private let lock = NSLock()

    public init() {}

    func splits(of source: DataSource, classes: Int?, seed: UInt64) throws -> Splits {
        let key = "\(source)|classes \(classes.map(String.init) ?? "auto")"
        if let hit = lock.withLock({ sources[key] }) { return hit }
        let read: (train: LabeledSet, test: LabeledSet)
        switch source {
        case let .idx(folder):
            read = try IDXFolder.load(folder, classes: classes)
        case let .hdf5(file, x, y, testX, testY, fraction, layout):
            read = try HDF5Source.load(file: file, x: x, y: y, testX: testX, testY: testY, testFraction: fraction,
                                       layout: layout, classes: classes, seed: SplitMix64(seed: 0x6864_6635).derived(Sampling.stableHash(file)).state)
        }
        let value = Splits(key: key, train: read.train, test: read.test)
        lock.withLock { sources[key] = value }
        return value
    }

    /// The source's train split without and with its validation examples, memoised so that tasks of one source
    /// share the arrays.
    func validationSplit(of raw: Splits, fraction: Double, seed: UInt64) -> (train: LabeledSet, validation: LabeledSet) {
        let key = "\(raw.key)|\(fraction)|\(seed)"
        if let hit = lock.withLock({ splits[key] }) { return hit }
        let value: (LabeledSet, LabeledSet)
        if fraction > 0 {
            let (kept, carved) = Sampling.stratifiedSplit(labels: raw.train.y, classes: raw.train.classes, fraction: fraction, seed: seed)
            value = (raw.train.subset(kept), raw.train.subset(carved))
        } else {
            value = (raw.train, .empty(name: raw.train.name, shape: raw.train.shape, classes: raw.train.classes))
        }
        lock.withLock { splits[key] = value }
        return value
    }
}
