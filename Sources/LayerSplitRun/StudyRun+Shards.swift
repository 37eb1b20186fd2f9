import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitSearch
import LayerSplitStore

/// What one shard did.
public struct ShardRunOutcome {
    public var shard: Shard
    /// The study as far as this shard could take it (`waitingForOtherShards` when others' trials are missing).
    public var outcome: Study.Outcome
    /// Trials trained (and stored) by this process.
    public var trained: Int
    /// Trials found in the run's logs when it started.
    public var found: Int
    /// The stages this shard reached, with how many of each stage's trials are its share.
    public var stages: [StageShare]

    public struct StageShare {
        public var stage: Study.Stage
        public var mine: Int
        /// This shard's fraction of the stage's expected cost.
        public var costShare: Double
    }
}

extension StudyRun {
    /// Runs shard `shard` of the search: plans every stage from all the logs of the output folder, trains this
    /// shard's share of each stage into `shards/shard-I-of-N.h5`, and stops at the first stage whose other
    /// trials are missing (they are other shards' share: a merge, then the next stage's shards, carry on).
    /// With `lastStage`, trains nothing past that stage (a Slurm array runs one stage).
    ///
    /// Refuses to start while another process trains the same shard. Reruns skip finished trials.
    public func runShard(_ shard: Shard, lastStage: Int? = nil,
                         onStage: ((ShardRunOutcome.StageShare) -> Void)? = nil) throws -> ShardRunOutcome {
        let folder = RunFolder(output)
        try folder.create()
        // Shared: many shards write one folder (each its own log), but no single-process search meanwhile.
        let runLock = try RunLock.acquire(folder, mode: .shared, command: command)
        defer { runLock.unlock() }
        folder.removeStaleTemporaries(owned: false)
        do {
            try FileManager.default.createDirectory(atPath: ShardFiles.folder(output), withIntermediateDirectories: true)
        } catch {
            throw StudyError("\(ShardFiles.folder(output)): cannot create the shard folder (\(RunFolder.reason(error)))")
        }
        let lockPath = ShardFiles.lockPath(output, shard)
        guard let lock = try FileLock.tryLock(lockPath) else {
            throw StudyError("shard \(shard) of \(output) is being trained by another process (\(FileLock.holder(lockPath) ?? "holder unknown")): two processes must never write the same shard log; wait for it to finish or stop it, then rerun (finished trials are kept)")
        }
        defer { lock.unlock() }
        // Every log of the folder is read (so all shards plan from the same trials); only the own one is written.
        let union = RunFolder.union(try folder.logs(expectedHash: space.hash, spaceName: space.file))
        let own = try RunLog.openOrCreate(at: ShardFiles.logPath(output, shard), info: runInfo(shard: shard))
        defer { try? own.close() }
        let storage = LayeredTrialStorage(own: own, pool: union.results)

        // Pretraining: seed j is made by shard j mod N, so the seeds are pretrained side by side; a shard that
        // needs another's seed first waits for that file (see `pretrained(seed:)`).
        if space.pretrain.initPath == nil && space.pretrain.recipe.steps > 0 {
            for (j, seed) in space.seeds.enumerated() where j % shard.count == shard.index { _ = try pretrained(seed: seed) }
        }

        let cost = try trialCost()
        let study = try makeStudy(storage: storage)
        var stages: [ShardRunOutcome.StageShare] = []
        study.assign = { stage in
            let owners = ShardPlan.assign(stage, shards: shard.count, cost: cost)
            var mine = Set(owners.filter { $0.value == shard.index }.map(\.key))
            if let lastStage, stage.index > lastStage { mine = [] }
            let total = stage.keys.reduce(0.0) { $0 + cost.cost($1, continuingFrom: stage.continuingFrom) }
            let own = mine.reduce(0.0) { $0 + cost.cost($1, continuingFrom: stage.continuingFrom) }
            let share = ShardRunOutcome.StageShare(stage: stage, mine: mine.count, costShare: total > 0 ? own / total : 0)
            stages.append(share)
            onStage?(share)
            return mine
        }
        let outcome = try study.optimize()
        try own.close()
        return ShardRunOutcome(shard: shard, outcome: outcome, trained: storage.saved, found: union.results.count, stages: stages)
    }

    /// The expected cost of trials of this search, for balancing shards: the GEMM FLOPs of one training step,
    /// counted (not timed, so every process gets the same number) on the all-shared model.
    public func trialCost() throws -> TrialCost {
        var rng = SplitMix64(seed: 0)
        let model = try MultiTaskModel(spec: modelSpec, mask: .all(.shared, units: modelSpec.units.count), rng: &rng)
        let trainer = space.training.trainer(for: model)
        let batch = Batcher(tasks: trainSets, batchSize: space.training.batchSize, seed: 0).next()
        // The counter is not thread-safe, and the count does not depend on threads.
        let threads = Threads.count
        Threads.set(1)
        defer { Threads.set(threads) }
        let flops = try FlopCounter.measure { _ = try trainer.stepUnchecked(batch) }
        return TrialCost(stepFLOPs: Double(flops), parameters: domain.parameters)
    }
}
