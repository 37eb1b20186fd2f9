import Foundation
import LayerSplitSearch
import LayerSplitStore

/// Combines the shard logs of a run into its `log.h5` and, when the search is complete, writes the usual
/// reports (`layersplit merge`).
///
/// The merge replays the study over the union of every log, training nothing: the plan visits trials in the
/// order a single process trains them, and each trial not yet in `log.h5` is appended once, in that order. So
/// the merged log and reports equal a single-process run's (apart from timings), a trial found in two logs
/// counts once, and merging twice changes nothing. When the replay stops at a stage with missing trials, the
/// merge says which shards owe them (the assignment is recomputed from the plan).
public final class ShardMerge {
    public enum Status: Equatable {
        /// Every stage is merged; the reports are written.
        case complete
        /// The merged stages are complete and the next stage is planned; none (or some, left by earlier
        /// shards) of its trials exist. A Slurm merge job submits its array.
        case nextStage
        /// A stage that should be finished has missing trials: shards failed, were killed, or never ran.
        case incomplete
    }

    public struct Report {
        public var status: Status
        public var outcome: Study.Outcome
        /// Trials appended to `log.h5` by this merge, and in it afterwards.
        public var appended: Int
        public var total: Int
        public var shardLogs: [(shard: Shard, path: String, trials: Int)]
        /// Trials found in more than one log (counted once).
        public var duplicates: Int
        public var conflicts: [String]
        /// Trials that ended failed or diverged, with the log they come from.
        public var unfinished: [String]
        /// Trials of the shard logs that the plan never reached (left out of the merged log).
        public var unplanned: [TrialKey]
        /// The number of shards the missing trials are attributed to (nil when it cannot be known).
        public var shardCount: Int?
        /// The first stage with missing trials, and those trials by shard index (key -1 without a shard count).
        public var stage: Study.Stage?
        public var missingByShard: [Int: [TrialKey]]
        /// Shards with trials missing in `stage`, ascending: the array to run next.
        public var shardsWithWork: [Int] { missingByShard.keys.filter { $0 >= 0 }.sorted() }
    }

    public let run: StudyRun

    public init(run: StudyRun) { self.run = run }

    /// The search space a run's logs were written for: its stored text, parsed as the file it was read from
    /// (relative data paths resolve as they did), or `spaceFile` when given (it must be the same text).
    public static func searchSpace(ofRun output: String, spaceFile: String? = nil) throws -> SearchSpace {
        if let spaceFile { return try SearchSpace.load(spaceFile) }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: output, isDirectory: &isDir), isDir.boolValue else {
            throw StudyError("\(output): no such results folder; give the --output of the sharded search")
        }
        let candidates = [output + "/log.h5"].filter { RunLog.exists(at: $0) }
            + ShardFiles.logs(in: output).map(\.path)
        guard let first = candidates.first else {
            throw StudyError("\(output): no shard logs (shards/shard-I-of-N.h5) and no log.h5: is this the output folder of a sharded search (layersplit search SPACE.yaml --shard I/N --output \(output))?")
        }
        let info = try RunLog.open(at: first).info
        let file = info.searchSpaceFile.isEmpty ? output + "/search-space.yaml" : info.searchSpaceFile
        return try SearchSpace(yaml: info.searchSpace, file: file)
    }

    /// Merges the shard logs into `log.h5` (with `write`; without, only plans: what `layersplit slurm` needs
    /// to know which stage and shards to submit). `shards`: the shard count missing trials are attributed to
    /// (default: the one the shard logs' names give, when unique). `expectedStage`: the stage whose shards just
    /// ran; missing trials of that stage or an earlier one mean failed shards, of a later one the next stage.
    public func merge(shards: Int? = nil, expectedStage: Int? = nil, write: Bool = true) throws -> Report {
        let output = run.output
        let folder = RunFolder(output)
        // Shared with shards still running (a merge by hand may run beside them), not with a plain search.
        let runLock = write ? try RunLock.acquire(folder, mode: .shared, command: run.command) : nil
        defer { runLock?.unlock() }
        let lock = write ? try FileLock.lock(output + "/.merge.lock") : nil
        defer { lock?.unlock() }
        let logs = try folder.logs(expectedHash: run.space.hash, spaceName: run.space.file)
        let union = RunFolder.union(logs)
        let shardLogs = logs.filter { $0.shard != nil }

        let base: TrialStorage
        let merged: RunLog?
        if write {
            merged = try run.openLog()
            base = merged!
        } else {
            let stored = InMemoryTrialStorage()
            for r in logs.first(where: { $0.shard == nil })?.results ?? [] { try stored.save(r) }
            base = stored
            merged = nil
        }
        defer { try? merged?.close() }
        // A merge trains nothing: every trial comes from the run log or the shards' (`owns` is false).
        let storage = LayeredTrialStorage(own: base, pool: union.results)
        let study = try run.makeStudy(storage: storage)
        study.observer = nil
        study.owns = { _ in false }
        let outcome = try study.optimize()

        if write {
            for r in storage.borrowed { try base.save(r) }
            try merged?.close()
        }

        let count = shards ?? {
            let counts = Set(shardLogs.compactMap { $0.shard?.count })
            return counts.count == 1 ? counts.first : nil
        }()
        var missingByShard: [Int: [TrialKey]] = [:]
        var status = Status.complete
        if outcome.waitingForOtherShards, let stage = outcome.waitingStage {
            if let count {
                let owners = ShardPlan.assign(stage, shards: count, cost: try run.trialCost())
                for key in outcome.missing { missingByShard[owners[key] ?? -1, default: []].append(key) }
            } else {
                missingByShard[-1] = outcome.missing
            }
            let present = stage.keys.count - outcome.missing.count
            if let expectedStage {
                status = stage.index > expectedStage ? .nextStage : .incomplete
            } else {
                status = present == 0 ? .nextStage : .incomplete
            }
        }
        if write && status == .complete {
            try run.writeReports(outcome, wallSeconds: Self.wallSeconds(logs))
        }

        let used = storage.visited
        let originOf = union.origin
        let unfinished = union.results.values.filter { $0.state != .done && used.contains($0.key) }
            .sorted { $0.key < $1.key }
            .map { "\($0.key.id) \($0.state.rawValue) (\((originOf[$0.key] ?? "?") as NSString).lastPathComponent)\($0.message.isEmpty ? "" : ": " + $0.message))" }
        return Report(
            status: status, outcome: outcome, appended: write ? storage.borrowed.count : 0,
            total: base.results.count,
            shardLogs: shardLogs.map { ($0.shard!, $0.path, $0.results.count) },
            duplicates: union.duplicates, conflicts: union.conflicts, unfinished: unfinished,
            unplanned: union.results.keys.filter { !used.contains($0) }.sorted(),
            shardCount: count, stage: outcome.waitingStage, missingByShard: missingByShard)
    }

    /// From the first log's creation to now: the wall time of the sharded search.
    static func wallSeconds(_ logs: [RunFolder.Log]) -> Double {
        let formatter = ISO8601DateFormatter()
        let starts = logs.compactMap { formatter.date(from: $0.info.created) }
        return starts.min().map { Date().timeIntervalSince($0) } ?? 0
    }
}
