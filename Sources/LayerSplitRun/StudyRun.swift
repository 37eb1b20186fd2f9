import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitReport
import LayerSplitSearch
import LayerSplitStore
import Yams

/// Everything the study module refuses that is not a search-space field.
public struct StudyError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One run of a search space into its output folder: load the data, check the budget, open (or resume) the run
/// log, pretrain per seed when asked, run the study, write the reports.
///
/// The output folder holds `log.h5` (every trial), `pretrained/seed<k>.h5`, `checkpoints/` (successive halving)
/// and the reports: `candidates.csv`, `front.csv`, `front.json`, `front.svg`, `summary.md`. Reports are written
/// to a temporary file and renamed, so a killed run never leaves half a report.
public final class StudyRun {
    public let space: SearchSpace
    public let tasks: [TaskData]
    public let modelSpec: ModelSpec
    public let domain: SearchDomain
    public let output: String
    public var observer: StudyObserver?
    /// Lines about work outside the trials (pretraining), for progress output.
    public var say: ((String) -> Void)?
    /// The command line, for summary.md.
    public var command = "layersplit search"
    private var pretrainedCache: [UInt64: [String: Tensor]] = [:]
    /// Pretrained files this process wrote (removed again when the run fails before its first trial).
    private var pretrainedWritten: [String] = []

    /// Loads the data and checks everything that can be checked before training.
    public init(space: SearchSpace, output: String? = nil) throws {
        self.space = space
        self.output = output ?? space.output
        tasks = try space.data.load(seed: 0)
        guard let first = tasks.first else { throw StudyError("\(space.file): the data section gives no tasks") }
        try Self.checkBatchSizes(space, tasks)
        modelSpec = space.modelSpec(inputShape: first.train.shape, classes: tasks.map(\.train.classes))
        // Parsing checked memory with the input shape a synthetic suite declares (or a lower bound); now the
        // data's real shape is known.
        let memory = space.trialMemory(inputShape: first.train.shape, classes: tasks.map(\.train.classes))
        if memory.bytes > SpecLimits.physicalMemory {
            throw DataError.spec(file: space.file, line: nil, field: "model.units", problem: memory.refusal)
        }
        do {
            try modelSpec.validate()
            domain = SearchDomain(allowed: space.allowed, budget: space.budget, parameters: try ParameterModel(spec: modelSpec))
        } catch let e as EngineError {
            throw DataError.spec(file: space.file, line: nil, field: "model.units", problem: "\(e)")
        }
        for mask in space.listedMasks where !domain.admits(mask) {
            throw space.budgetLocation.error("the listed mask \(mask) (\(domain.parameters.counts(for: mask).stored) parameters) is not allowed by the states or does not fit \(space.budget)")
        }
        if domain.allMasks.isEmpty {
            let smallest = MaskEnumerator(allowed: space.allowed).map { domain.parameters.counts(for: $0).stored }.min() ?? 0
            throw space.budgetLocation.error(
                "\(space.budget) fits no mask: the smallest allowed mask stores \(smallest) parameters (\(formatCount(smallest))); raise the budget to at least that")
        }
    }

    /// Refuses a batch larger than a task's training split: every step draws `batch_size` rows of every task,
    /// so such a batch only repeats examples, at many times the cost of one pass over them.
    static func checkBatchSizes(_ space: SearchSpace, _ tasks: [TaskData]) throws {
        var recipes = [("training", space.training.batchSize)]
        if space.pretrain.initPath == nil && space.pretrain.recipe.steps > 0 { recipes.append(("pretrain", space.pretrain.recipe.batchSize)) }
        for (section, batch) in recipes {
            guard let small = tasks.min(by: { $0.train.count < $1.train.count }), batch > small.train.count else { continue }
            // The line of the batch_size that applies (pretrain inherits training's).
            let line = Self.line(of: [section, "batch_size"], in: space.text) ?? Self.line(of: ["training", "batch_size"], in: space.text)
            throw DataError.spec(file: space.file, line: line, field: "\(section).batch_size",
                                 problem: "\(batch) is larger than task '\(small.name)''s training split of \(small.train.count) examples; use at most \(small.train.count) (a step draws batch_size examples of every task)")
        }
    }

    /// The line of the value at `path` (mapping keys from the top) in a YAML text, when it is there.
    static func line(of path: [String], in text: String) -> Int? {
        guard var node = try? Yams.compose(yaml: text) else { return nil }
        for key in path {
            guard let next = node[Node(key)] else { return nil }
            node = next
        }
        return node.mark?.line
    }

    public var taskNames: [String] { tasks.map(\.name) }
    public var logPath: String { output + "/log.h5" }

    /// The training and evaluation sets.
    var trainSets: [LabeledSet] { tasks.map(\.train) }
    var evaluationSets: [LabeledSet] { tasks.map { space.evaluation == .test ? $0.test : $0.validation } }

    public func strategy() -> SearchStrategy {
        switch space.strategy {
        case .exhaustive: ExhaustiveStrategy(domain: domain)
        case .families: FamiliesStrategy(domain: domain)
        case .greedy: GreedyStrategy(domain: domain)
        case .random: RandomStrategy(domain: domain, count: space.randomCount, seed: space.seeds.first ?? 0)
        case .list: ListStrategy(masks: space.listedMasks)
        }
    }

    /// Opens the run log (or a new, empty one: nothing is written before the first trial), refusing one
    /// written for another version of the search space. One whose only change is more seeds is continued.
    /// `run(force:)` sets a different run aside before it gets here.
    public func openLog() throws -> RunLog {
        let path = logPath
        guard RunLog.exists(at: path) else { return try RunLog.create(at: path, info: runInfo()) }
        let logged: RunLog
        do {
            logged = try RunLog.open(at: path)
        } catch {
            throw StudyError("\(error); rerun with --force to set the old run aside and start afresh, or set another 'output:'")
        }
        if logged.info.searchSpaceHash == space.hash { return logged }
        if let earlier = try? SearchSpace(yaml: logged.info.searchSpace, file: space.file), space.addsSeeds(to: earlier) {
            // More seeds, nothing else changed: the logged trials stay valid; only the new seeds train.
            try logged.adoptSearchSpace(text: space.text)
            let added = space.seeds.filter { !earlier.seeds.contains($0) }
            say?("\(path): \(space.file) adds seed(s) \(added.map(String.init).joined(separator: ", ")); the \(earlier.seeds.count) logged seed(s) are reused")
            return logged
        }
        throw StudyError("\(path): this results folder holds a run of a different version of \(space.file); rerun with --force to start afresh (everything the old run made is set aside in previous/), or set another 'output:'")
    }

    /// Whether the folder holds a run log that this search space cannot continue (another study or version,
    /// or a log that does not open): what `--force` sets aside.
    func logDiffers() -> Bool {
        guard RunLog.exists(at: logPath) else { return false }
        guard let logged = try? RunLog.open(at: logPath) else { return true }
        if logged.info.searchSpaceHash == space.hash { return false }
        if let earlier = try? SearchSpace(yaml: logged.info.searchSpace, file: space.file), space.addsSeeds(to: earlier) { return false }
        return true
    }

    public nonisolated(unsafe) static var toolVersion = "0.1.0"

    /// What the run log records about the run, so that `layersplit front`, `best` and `merge` work from the
    /// log alone.
    func runInfo(shard: Shard? = nil) -> RunInfo {
        RunInfo(searchSpace: space.text, toolVersion: StudyRun.toolVersion, seed: space.seeds.first ?? 0, study: space.study,
                model: modelSpec.description, taskNames: taskNames, allSharedParams: domain.parameters.allSharedCount,
                // Where the search space was read from, so that `layersplit merge` resolves its relative data paths.
                searchSpaceFile: URL(fileURLWithPath: space.file).standardizedFileURL.path, shard: shard?.description ?? "")
    }

    /// The study over `storage`, with a runner that trains for real; the search space's strategy and halving
    /// unless others are given (the search benchmark runs several strategies over one log).
    public func makeStudy(storage: TrialStorage, strategy: SearchStrategy? = nil,
                          halving: SuccessiveHalving?? = nil) throws -> Study {
        let halving = halving ?? space.halving
        let runner = TrainingTrialRunner(
            spec: modelSpec, recipe: space.training, evalEvery: space.evalEvery, train: trainSets,
            evaluation: evaluationSets, pretrained: { [unowned self] in try self.pretrained(seed: $0) },
            checkpoints: halving == nil ? nil : FolderCheckpoints(folder: RunFolder(output).checkpointsFolder,
                                                                  provenance: { [space] in space.trainingProvenance(seed: $0) }))
        if space.keep != .none {
            runner.models = FolderModels(
                folder: FolderModels.folder(of: output),
                attributes: ["search_space_hash": space.hash, "study": space.study, "evaluation": space.evaluation.rawValue,
                             "task_names": TrainedModelFile.taskNamesJSON(taskNames)],
                normalization: { [unowned self] in try FolderModels.inputNormalization(space: self.space, tasks: self.tasks) })
        }
        let study = Study(strategy: strategy ?? self.strategy(), seeds: space.seeds, steps: space.training.steps,
                          halving: halving, storage: storage, runner: runner)
        study.observer = observer
        return study
    }

    /// Runs the study on the run log and writes the reports.
    ///
    /// Holds the folder's lock throughout (a second search into the folder is refused at once), removes
    /// temporary files of earlier, killed runs, and with `force` sets aside everything a different earlier
    /// run made. A run that fails before its first trial leaves the folder as it found it.
    public func run(force: Bool = false) throws -> Study.Outcome {
        let started = Date()
        let folder = RunFolder(output)
        let createdFolder = try folder.create()
        let lockExisted = FileManager.default.fileExists(atPath: folder.lockPath)
        let lock = try RunLock.acquire(folder, mode: .exclusive, command: command)
        defer { lock.unlock() }
        let removed = folder.removeStaleTemporaries(owned: true)
        if !removed.isEmpty { say?("removed \(removed.count) temporary file(s) of an earlier, killed run") }
        try refuseUnmergedShards()
        if force && logDiffers(), let moved = try folder.setAside() {
            say?("set the earlier run aside in \(moved)")
        }
        let log = try openLog()
        defer { try? log.close() }
        // A model file whose trial the log lacks was written by a run killed before it logged the trial.
        let staleModels = FolderModels.removeStale(in: FolderModels.folder(of: output), logged: Set(log.trialsInOrder.map(\.key)))
        if !staleModels.isEmpty { say?("removed \(staleModels.count) model file(s) of trials an earlier, killed run did not log") }
        do {
            let outcome = try makeStudy(storage: log).optimize()
            let seconds = Date().timeIntervalSince(started)
            try log.appendRun(RunLog.Run(command: command, machine: Self.machineDescription(),
                                         finished: ISO8601DateFormatter().string(from: Date()),
                                         wallSeconds: seconds, trained: log.saved))
            try log.close()
            try writeReports(outcome, wallSeconds: seconds, history: log.runs)
            return outcome
        } catch {
            if log.saved == 0 && !RunLog.exists(at: logPath) {
                // Nothing was stored: leave the folder as it was found.
                for path in pretrainedWritten { unlink(path) }
                rmdir(folder.pretrainedFolder)
                rmdir(folder.checkpointsFolder)
                for (_, path) in FolderModels.files(in: FolderModels.folder(of: output)) { unlink(path) }
                rmdir(FolderModels.folder(of: output))
                if !lockExisted { unlink(folder.lockPath) }
                if createdFolder { rmdir(folder.path) }
            }
            throw error
        }
    }

    /// Refuses a single-process run over a folder whose shard logs hold trials of this study that `log.h5`
    /// lacks: it would train them again, when `layersplit merge` adds them without training.
    func refuseUnmergedShards() throws {
        let shardLogs = ShardFiles.logs(in: output)
        guard !shardLogs.isEmpty else { return }
        let merged = RunLog.exists(at: logPath) ? Set(try RunLog.open(at: logPath).trialsInOrder.map(\.key)) : []
        var unmerged = Set<TrialKey>()
        for s in shardLogs {
            let log = try RunLog.open(at: s.path)
            guard log.info.searchSpaceHash == space.hash else { continue }
            unmerged.formUnion(Set(log.trialsInOrder.map(\.key)).subtracting(merged))
        }
        guard unmerged.isEmpty else {
            throw StudyError("\(output)/shards holds \(unmerged.count) trial(s) of this study that log.h5 lacks; run 'layersplit merge \(output)' first (it adds them without training, even while shards are missing), then this search again")
        }
    }

    /// The backbone weights seed `seed` starts from: the `pretrain.init` file, or this run's pretraining for the
    /// seed (`pretrained/seed<k>.h5`, made once and reused by reruns and shards), or nil without pretraining.
    ///
    /// A pretrained file is reused only when its provenance (the data, the model, the pretraining recipe and
    /// the seed: `SearchSpace.pretrainingProvenance`) is this run's; otherwise it is trained again.
    public func pretrained(seed: UInt64) throws -> [String: Tensor]? {
        if let cached = pretrainedCache[seed] { return cached }
        var weights: [String: Tensor]?
        if let path = space.pretrain.initPath {
            weights = Pretraining.backbone(of: try WeightsFile.makeModel(from: path))
        } else if space.pretrain.recipe.steps > 0 {
            let folder = RunFolder(output).pretrainedFolder
            let path = folder + "/seed\(seed).h5"
            let provenance = space.pretrainingProvenance(seed: seed)
            func reusable() -> Bool { (try? WeightsFile.stringAttribute("provenance", of: path)) == provenance }
            if !reusable() {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                // Shards of one run may need the same seed at once: one trains it, the others wait for the file
                // rather than training it again (the file itself is replaced atomically either way).
                let lock = try FileLock.lock(folder + "/.seed\(seed).lock")
                defer { lock.unlock() }
                if !reusable() {
                    if FileManager.default.fileExists(atPath: path) {
                        say?("\(path) was made by another pretraining recipe, data or model; pretraining seed \(seed) again")
                    }
                    let started = Date()
                    say?("pretraining seed \(seed): \(space.pretrain.recipe.steps) steps, every unit shared, on the union of the tasks")
                    let model = try Pretraining.train(spec: modelSpec, train: trainSets, recipe: space.pretrain.recipe, seed: seed)
                    try WeightsFile.write(model, to: path, attributes: ["pretrained_for": space.study, "provenance": provenance],
                                          integers: ["seed": Int64(bitPattern: seed)])
                    pretrainedWritten.append(path)
                    say?("pretrained seed \(seed) in " + String(format: "%.1f", Date().timeIntervalSince(started)) + " s: \(path)")
                }
            }
            weights = Pretraining.backbone(of: try WeightsFile.makeModel(from: path))
        }
        pretrainedCache[seed] = weights
        return weights
    }

    /// The report of a finished run, read from its log alone.
    public static func report(fromLog path: String) throws -> FrontReport {
        let log = try RunLog.open(at: path)
        let info = log.info
        // Each mask's longest training is its full-length result; shorter ones were stopped by halving.
        let all = Candidate.group(log.trialsInOrder)
        let longest = Dictionary(all.map { ($0.mask, $0.steps) }, uniquingKeysWith: max)
        return FrontReport(study: info.study.isEmpty ? (path as NSString).lastPathComponent : info.study,
                           taskNames: info.taskNames,
                           candidates: all.filter { $0.steps == longest[$0.mask] },
                           pruned: all.filter { $0.steps != longest[$0.mask] },
                           allSharedCount: info.allSharedParams)
    }

    /// Writes candidates.csv, front.csv, front.json, front.svg and summary.md into the output folder.
    ///
    /// `history` is the log's record of invocations (this one last): when it holds invocations that trained,
    /// summary.md reports their command, machine and summed wall time, so that rerunning a finished search
    /// (which only rewrites the reports) keeps the figures of the run that did the work.
    public func writeReports(_ outcome: Study.Outcome, wallSeconds: Double, history: [RunLog.Run] = []) throws {
        let report = FrontReport(study: space.study, taskNames: taskNames, candidates: outcome.candidates,
                                 pruned: outcome.pruned, allSharedCount: domain.parameters.allSharedCount)
        let working = history.filter { $0.trained > 0 }
        var timing: [String] = []
        if working.count > 1 {
            timing = ["wall time summed over the \(working.count) invocations that trained: "
                      + working.map { String(format: "%.1f s", $0.wallSeconds) }.joined(separator: " + ")]
        } else if working.isEmpty && !history.isEmpty {
            let logged = (outcome.candidates + outcome.pruned).reduce(0) { $0 + $1.seconds }
            timing = [String(format: "this invocation trained nothing (every trial came from the log, which predates run records); the logged trials trained for %.1f s in all", logged)]
        }
        let provenance = SummaryWriter.Provenance(
            command: working.last?.command ?? command,
            wallSeconds: working.isEmpty ? wallSeconds : working.reduce(0) { $0 + $1.wallSeconds },
            machine: working.last?.machine ?? Self.machineDescription(),
            trainingSteps: outcome.trainingSteps,
            notes: timing + ["model: \(modelSpec)", "budget: \(space.budget); strategy: \(space.strategy.rawValue)"
                    + (space.halving.map { " with successive halving (min_steps \($0.minSteps), eta \($0.eta))" } ?? ""),
                    "training: \(space.training.steps) steps, batch \(space.training.batchSize) per task, \(space.training.optimizer.rawValue) lr \(space.training.learningRate), \(space.training.schedule.rawValue) schedule; evaluation on the \(space.evaluation.rawValue) split; seeds \(space.seeds.map(String.init).joined(separator: ", "))"])
        try Self.writeReportFiles(report, provenance: provenance, to: output)
        // The run is complete: `training.keep: front` keeps the models of the front's masks only.
        FolderModels.prune(in: FolderModels.folder(of: output), keep: space.keep,
                           frontTrials: report.front.flatMap { report.candidates[$0].trials.map(\.key) })
    }

    /// The five report files of `report` in `folder`, each replaced atomically.
    public static func writeReportFiles(_ report: FrontReport, provenance: SummaryWriter.Provenance, to folder: String) throws {
        try writeAtomically(TableWriter.candidatesCSV(report), to: folder + "/candidates.csv")
        try writeAtomically(TableWriter.frontCSV(report), to: folder + "/front.csv")
        try writeAtomically(TableWriter.frontJSON(report), to: folder + "/front.json")
        try writeAtomically(FrontPlot.svg(report), to: folder + "/front.svg")
        try writeAtomically(SummaryWriter.markdown(report, provenance: provenance), to: folder + "/summary.md")
    }

    static func writeAtomically(_ text: String, to path: String) throws {
        try AtomicFile.write(Data(text.utf8), to: path)
    }

    /// The CPU, its cores, the engine's threads and OpenBLAS's kernel: what a timing is worth.
    public static func machineDescription() -> String {
        var cpu = "unknown CPU"
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }) {
            cpu = line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? cpu
        }
        return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(Threads.count) engine thread(s), OpenBLAS \(BLAS.coreName)"
    }
}
