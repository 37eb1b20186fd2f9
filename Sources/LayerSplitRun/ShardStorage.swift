import Foundation
import LayerSplitSearch
import LayerSplitStore

/// The run logs of one output folder: the merged `log.h5` (if any) and every shard log under `shards/`, read
/// whole and checked to belong to one search space (one hash). What a shard, a merge and `layersplit slurm`
/// all plan from, so that they agree.
public struct RunLogSet {
    public struct Log {
        public var path: String
        /// nil for the merged `log.h5`.
        public var shard: Shard?
        public var info: RunInfo
        /// The log's trials, in append order.
        public var results: [TrialResult]
    }

    /// `log.h5` first when it exists, then the shard logs by shard count and index.
    public var logs: [Log]

    public var merged: Log? { logs.first { $0.shard == nil } }
    public var shardLogs: [Log] { logs.filter { $0.shard != nil } }

    /// Reads every log of `output`. With `expectedHash`, refuses any log of another search space; without it,
    /// refuses logs that disagree with each other (a merge must not mix two studies). `spaceName` is the file
    /// the user knows the study by, for messages.
    public static func read(output: String, expectedHash: String?, spaceName: String) throws -> RunLogSet {
        var paths: [(String, Shard?)] = []
        let mergedPath = output + "/log.h5"
        if FileManager.default.fileExists(atPath: mergedPath) { paths.append((mergedPath, nil)) }
        paths += ShardFiles.logs(in: output).map { ($0.path, $0.shard) }
        var logs: [Log] = []
        for (path, shard) in paths {
            let info = try RunLog.readInfo(at: path)
            logs.append(Log(path: path, shard: shard, info: info, results: []))
        }
        try checkOneSearchSpace(logs, expectedHash: expectedHash, spaceName: spaceName)
        for i in logs.indices {
            logs[i].results = try RunLog.records(at: logs[i].path).compactMap { try RunLogStorage.result(from: $0, file: logs[i].path) }
        }
        return RunLogSet(logs: logs)
    }

    static func checkOneSearchSpace(_ logs: [Log], expectedHash: String?, spaceName: String) throws {
        if let expectedHash {
            let wrong = logs.filter { $0.info.searchSpaceHash != expectedHash }
            if let merged = wrong.first(where: { $0.shard == nil }) {
                throw StudyError("\(merged.path): this results folder holds a run of a different version of \(spaceName) (\(merged.info.searchSpaceHash), the file is \(expectedHash)): set another output folder (--output or 'output:'), or move this one away")
            }
            guard wrong.isEmpty else {
                throw StudyError("\(wrong.map(\.path).joined(separator: ", ")) \(wrong.count == 1 ? "was" : "were") written for another search space (\(wrong[0].info.searchSpaceHash)) than \(spaceName) (\(expectedHash)): this folder holds another study or another version of the file; use another output folder, or move those logs away")
            }
            return
        }
        let groups = Dictionary(grouping: logs, by: \.info.searchSpaceHash)
        guard groups.count <= 1 else {
            let listing = groups.sorted { $0.key < $1.key }.map { hash, members in
                "\(hash): \(members.map { ($0.path as NSString).lastPathComponent }.joined(separator: ", "))"
            }.joined(separator: "; ")
            throw StudyError("the logs of this folder belong to \(groups.count) different search spaces (\(listing)); a merge never mixes studies: move the logs of the other study away")
        }
    }

    /// Every trial once: the merged log's first, then the shard logs' in order. A trial found in several logs
    /// (already merged, or trained by two shards) counts once; `conflicts` names those whose metrics differ.
    public func union() -> Union {
        var u = Union()
        for log in logs {
            for r in log.results {
                if let kept = u.results[r.key] {
                    u.duplicates += 1
                    if !Self.sameMetrics(kept, r) {
                        u.conflicts.append("\(r.key.id) differs between \(u.origin[r.key] ?? "?") and \(log.path) (kept the first; were they run with different --threads?)")
                    }
                    continue
                }
                u.results[r.key] = r
                u.origin[r.key] = log.path
            }
        }
        return u
    }

    public struct Union {
        public var results: [TrialKey: TrialResult] = [:]
        /// The log each kept trial comes from.
        public var origin: [TrialKey: String] = [:]
        public var duplicates = 0
        public var conflicts: [String] = []
    }

    /// Equal apart from timing: what determinism promises for two runs of the same key.
    static func sameMetrics(_ a: TrialResult, _ b: TrialResult) -> Bool {
        a.state == b.state && a.counts == b.counts && "\(a.accuracy)" == "\(b.accuracy)" && "\(a.loss)" == "\(b.loss)"
            && a.curve.count == b.curve.count
            && zip(a.curve, b.curve).allSatisfy { $0.step == $1.step && "\($0.accuracy)\($0.trainLoss)" == "\($1.accuracy)\($1.trainLoss)" }
    }
}

/// A shard's trials: it reads every log of the output folder (the merged `log.h5` and all shard logs) and
/// writes only its own, `shards/shard-I-of-N.h5`, so no two shards ever write the same file, and the merged
/// log is written by `layersplit merge` alone.
public final class ShardStorage: TrialStorage {
    public let shard: Shard
    public let own: RunLog
    /// Trials this process stored.
    public private(set) var saved = 0
    /// Trials found in the logs when the shard started.
    public let found: Int
    private var byKey: [TrialKey: TrialResult]

    /// Opens (or creates) the shard's log and reads every log of the folder. The caller holds the shard's lock.
    public init(run: StudyRun, shard: Shard) throws {
        self.shard = shard
        try FileManager.default.createDirectory(atPath: ShardFiles.folder(run.output), withIntermediateDirectories: true)
        let set = try RunLogSet.read(output: run.output, expectedHash: run.space.hash, spaceName: run.space.file)
        byKey = set.union().results
        found = byKey.count
        var attributes = run.logAttributes
        attributes["shard"] = shard.description
        own = try RunLog.openOrCreate(at: ShardFiles.logPath(run.output, shard), searchSpace: run.space.text,
                                      seed: run.space.seeds.first ?? 0, toolVersion: StudyRun.toolVersion, attributes: attributes)
    }

    public func result(for key: TrialKey) -> TrialResult? { byKey[key] }

    public func save(_ result: TrialResult) throws {
        try own.append(RunLogStorage.record(from: result))
        byKey[result.key] = result
        saved += 1
    }

    public var results: [TrialResult] { byKey.values.sorted { $0.key < $1.key } }
}
