import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitReport
import LayerSplitSearch
import LayerSplitStore

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

    /// Loads the data and checks everything that can be checked before training.
    public init(space: SearchSpace, output: String? = nil) throws {
        self.space = space
        self.output = output ?? space.output
        tasks = try space.data.load(seed: 0)
        guard let first = tasks.first else { throw StudyError("\(space.file): the data section gives no tasks") }
        modelSpec = space.modelSpec(inputShape: first.train.shape, classes: tasks.map(\.train.classes))
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

    /// Opens the run log, refusing one written for another version of the search space unless `force`, in which
    /// case the old log is kept beside as `log.<date>.h5` and the run starts afresh.
    public func openLog(force: Bool, logPath: String? = nil) throws -> RunLog {
        let path = logPath ?? self.logPath
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let exists = FileManager.default.fileExists(atPath: path)
        let logged = exists ? try? RunLog.readInfo(at: path) : nil
        // An unreadable log counts as a different one (--force moves it aside).
        let differs = exists && logged?.searchSpaceHash != space.hash
        if differs, let logged, let earlier = try? SearchSpace(yaml: logged.searchSpace, file: space.file),
           space.addsSeeds(to: earlier) {
            // More seeds, nothing else changed: the logged trials stay valid; only the new seeds train.
            try RunLog.adoptSearchSpace(at: path, text: space.text)
            let added = space.seeds.filter { !earlier.seeds.contains($0) }
            say?("\(path): \(space.file) adds seed(s) \(added.map(String.init).joined(separator: ", ")); the \(earlier.seeds.count) logged seed(s) are reused")
        } else if differs && force {
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
            try FileManager.default.moveItem(atPath: path, toPath: path.replacingOccurrences(of: ".h5", with: ".\(stamp).h5"))
        }
        do {
            return try RunLog.openOrCreate(at: path, searchSpace: space.text, seed: space.seeds.first ?? 0,
                                           toolVersion: StudyRun.toolVersion, attributes: logAttributes)
        } catch let e as StoreError where e.description.contains("another search space") {
            throw StudyError("\(path): this results folder holds a run of a different version of \(space.file); rerun with --force to start afresh (the old log is kept beside it), or set another 'output:'")
        }
    }

    public nonisolated(unsafe) static var toolVersion = "0.1.0"

    /// What `layersplit front` and `best` need to report from the log alone.
    var logAttributes: [String: String] {
        ["study": space.study, "model": modelSpec.description, "task_names": String(decoding: try! JSONEncoder().encode(taskNames), as: UTF8.self),
         "all_shared_params": String(domain.parameters.allSharedCount),
         // Where the search space was read from, so that `layersplit merge` resolves its relative data paths.
         "search_space_file": URL(fileURLWithPath: space.file).standardizedFileURL.path]
    }

    /// The study over `storage`, with a runner that trains for real; the search space's strategy and halving
    /// unless others are given (the search benchmark runs several strategies over one log).
    public func makeStudy(storage: TrialStorage, strategy: SearchStrategy? = nil,
                          halving: SuccessiveHalving?? = nil) throws -> Study {
        let halving = halving ?? space.halving
        let runner = TrainingTrialRunner(
            spec: modelSpec, recipe: space.training, evalEvery: space.evalEvery, train: trainSets,
            evaluation: evaluationSets, pretrained: { [unowned self] in try self.pretrained(seed: $0) },
            checkpoints: halving == nil ? nil : try FolderCheckpoints(folder: output + "/checkpoints"))
        let study = Study(strategy: strategy ?? self.strategy(), seeds: space.seeds, steps: space.training.steps,
                          halving: halving, storage: storage, runner: runner)
        study.observer = observer
        return study
    }

    /// Runs the study on the run log and writes the reports.
    public func run(force: Bool = false) throws -> Study.Outcome {
        let started = Date()
        try refuseUnmergedShards()
        let log = try openLog(force: force)
        let storage = try RunLogStorage(log: log)
        let outcome = try makeStudy(storage: storage).optimize()
        let seconds = Date().timeIntervalSince(started)
        try log.appendRun(RunLog.Run(command: command, machine: Self.machineDescription(),
                                     finished: ISO8601DateFormatter().string(from: Date()),
                                     wallSeconds: seconds, trained: storage.saved))
        try writeReports(outcome, wallSeconds: seconds, history: try RunLog.runs(at: log.path))
        return outcome
    }

    /// Refuses a single-process run over a folder whose shard logs hold trials of this study that `log.h5`
    /// lacks: it would train them again, when `layersplit merge` adds them without training.
    func refuseUnmergedShards() throws {
        let shardLogs = ShardFiles.logs(in: output)
        guard !shardLogs.isEmpty else { return }
        func keys(_ path: String) throws -> Set<TrialKey> {
            Set(try RunLog.records(at: path).compactMap { try RunLogStorage.result(from: $0, file: path)?.key })
        }
        let merged = FileManager.default.fileExists(atPath: logPath) ? try keys(logPath) : []
        var unmerged = Set<TrialKey>()
        for s in shardLogs where (try? RunLog.readInfo(at: s.path))?.searchSpaceHash == space.hash {
            unmerged.formUnion(try keys(s.path).subtracting(merged))
        }
        guard unmerged.isEmpty else {
            throw StudyError("\(output)/shards holds \(unmerged.count) trial(s) of this study that log.h5 lacks; run 'layersplit merge \(output)' first (it adds them without training, even while shards are missing), then this search again")
        }
    }

    /// The backbone weights seed `seed` starts from: the `pretrain.init` file, or this run's pretraining for the
    /// seed (`pretrained/seed<k>.h5`, made once and reused by reruns and shards), or nil without pretraining.
    public func pretrained(seed: UInt64) throws -> [String: Tensor]? {
        if let cached = pretrainedCache[seed] { return cached }
        var weights: [String: Tensor]?
        if let path = space.pretrain.initPath {
            weights = Pretraining.backbone(of: try WeightsFile.makeModel(from: path))
        } else if space.pretrain.recipe.steps > 0 {
            let path = output + "/pretrained/seed\(seed).h5"
            if !FileManager.default.fileExists(atPath: path) {
                try FileManager.default.createDirectory(atPath: output + "/pretrained", withIntermediateDirectories: true)
                // Shards of one run may need the same seed at once: one trains it, the others wait for the file
                // rather than training it again (the file itself is replaced atomically either way).
                let lock = try FileLock.lock(output + "/pretrained/.seed\(seed).lock")
                defer { lock.unlock() }
                if !FileManager.default.fileExists(atPath: path) {
                    let started = Date()
                    say?("pretraining seed \(seed): \(space.pretrain.recipe.steps) steps, every unit shared, on the union of the tasks")
                    let model = try Pretraining.train(spec: modelSpec, train: trainSets, recipe: space.pretrain.recipe, seed: seed)
                    try WeightsFile.write(model, to: path, attributes: ["pretrained_for": space.study, "seed": String(seed)])
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
        let info = try RunLog.readInfo(at: path)
        let results = try RunLog.records(at: path).compactMap { try RunLogStorage.result(from: $0, file: path) }
        // Each mask's longest training is its full-length result; shorter ones were stopped by halving.
        let all = Candidate.group(results)
        let longest = Dictionary(all.map { ($0.mask, $0.steps) }, uniquingKeysWith: max)
        return FrontReport(study: info.attributes["study"] ?? (path as NSString).lastPathComponent,
                           taskNames: (info.attributes["task_names"]).flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? [],
                           candidates: all.filter { $0.steps == longest[$0.mask] },
                           pruned: all.filter { $0.steps != longest[$0.mask] },
                           allSharedCount: Int(info.attributes["all_shared_params"] ?? "") ?? 0)
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
        try Self.writeAtomically(TableWriter.candidatesCSV(report), to: output + "/candidates.csv")
        try Self.writeAtomically(TableWriter.frontCSV(report), to: output + "/front.csv")
        try Self.writeAtomically(TableWriter.frontJSON(report), to: output + "/front.json")
        try Self.writeAtomically(FrontPlot.svg(report), to: output + "/front.svg")
        try Self.writeAtomically(SummaryWriter.markdown(report, provenance: provenance), to: output + "/summary.md")
    }

    static func writeAtomically(_ text: String, to path: String) throws {
        let temp = path + ".tmp-\(getpid())"
        try Data(text.utf8).write(to: URL(fileURLWithPath: temp))
        guard rename(temp, path) == 0 else {
            unlink(temp)
            throw StudyError("\(path): cannot be written (\(String(cString: strerror(errno))))")
        }
    }

    static func machineDescription() -> String {
        var cpu = "unknown CPU"
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }) {
            cpu = line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? cpu
        }
        return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(Threads.count) engine thread(s), OpenBLAS \(BLAS.coreName)"
    }
}
