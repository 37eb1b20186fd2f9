import Foundation
import LayerSplitEngine
import Synchronization

/// Runs a search: asks the strategy for rounds, trains each round's trials (with successive halving when
/// configured), skips every trial the storage already has, and returns the candidates (Optuna's Study).
///
/// Resuming is rerunning: the plan is a deterministic function of the strategy and the finished trials, so a
/// killed study, started again on the same storage, plans the same rounds and trains only what is missing.
///
/// Sharding rests on the same property: a trial's result depends only on its key and the search space, so
/// several processes can each train a disjoint share of a stage (`assign`) into their own storage; one that
/// finds another's trials missing stops with `waitingForOtherShards`, and a study over the union of their
/// storages plans and returns exactly what one process would have.
public final class Study {
    public let strategy: SearchStrategy
    public let seeds: [UInt64]
    /// Full training length of a trial.
    public let steps: Int
    public let halving: SuccessiveHalving?
    public let storage: TrialStorage
    public let runner: TrialRunner
    public var observer: StudyObserver?
    /// Only trials for which this returns true are trained here (sharding); others must come from storage.
    public var owns: (TrialKey) -> Bool = { _ in true }
    /// Sharding by stage: given each stage's trials, the ones this process trains (nil: all of them). A shard
    /// computes the same assignment as every other shard because it sees the whole stage, stored trials
    /// included; trials outside the set must come from storage. Combined with `owns` (both must agree).
    public var assign: ((Stage) -> Set<TrialKey>)?

    public init(strategy: SearchStrategy, seeds: [UInt64], steps: Int, halving: SuccessiveHalving? = nil,
                storage: TrialStorage, runner: TrialRunner) {
        self.strategy = strategy
        self.seeds = seeds
        self.steps = steps
        self.halving = halving
        self.storage = storage
        self.runner = runner
    }

    /// What a study produced: the candidates trained to full length, and every trial (pruned ones too).
    public struct Outcome {
        /// Fully trained candidates, one per mask.
        public var candidates: [Candidate]
        /// Candidates stopped early by successive halving, at the length they reached.
        public var pruned: [Candidate]
        /// Training steps spent by this study's plan (stored trials count: they were spent once).
        public var trainingSteps: Int
        public var rounds: Int
        /// True when a shard could not finish because trials owned by other shards are missing.
        public var waitingForOtherShards: Bool
        /// When waiting: the stage that cannot finish, and its trials that are neither stored nor trained here.
        public var waitingStage: Stage? = nil
        public var missing: [TrialKey] = []
    }

    /// A set of trials that can be trained in parallel: one round's trials at one training length (the whole
    /// round, or one successive-halving rung of it). The next stage depends on this one's results.
    public struct Stage: Hashable, Sendable, CustomStringConvertible {
        /// Stages in the order the study reaches them, from 0.
        public var index: Int
        public var round: Int
        /// The successive-halving rung within the round (0 of 1 without halving).
        public var rung: Int
        public var rungs: Int
        /// Every trial of the stage, in the order the study obtains them (stored ones too).
        public var keys: [TrialKey]
        /// The steps of the previous rung, which these trials continue; nil for the first rung.
        public var continuingFrom: Int?

        public init(index: Int, round: Int, rung: Int, rungs: Int, keys: [TrialKey], continuingFrom: Int?) {
            self.index = index
            self.round = round
            self.rung = rung
            self.rungs = rungs
            self.keys = keys
            self.continuingFrom = continuingFrom
        }

        /// `stage 2 (round 1, rung 2/3)`, for messages.
        public var description: String {
            "stage \(index) (round \(round + 1)" + (rungs > 1 ? ", rung \(rung + 1)/\(rungs)" : "") + ")"
        }
    }

    /// Runs the study to the end (or as far as this shard can go).
    public func optimize() throws -> Outcome {
        var evaluated: [Candidate] = []
        var pruned: [Candidate] = []
        var round = 0
        var trainingSteps = 0
        var stageIndex = 0
        while let masks = strategy.nextRound(after: evaluated, round: round) {
            let fresh = masks.filter { m in !evaluated.contains { $0.mask == m } }
            let rungs = halving?.rungs(fullSteps: steps) ?? [steps]
            var alive = uniqued(fresh)
            for (r, rungSteps) in rungs.enumerated() {
                let previous = r > 0 ? rungs[r - 1] : nil
                let keys = alive.flatMap { m in seeds.map { TrialKey(mask: m, seed: $0, steps: rungSteps) } }
                let stage = Stage(index: stageIndex, round: round, rung: r, rungs: rungs.count, keys: keys,
                                  continuingFrom: previous)
                stageIndex += 1
                let assigned = assign?(stage)
                // A shard's progress counts its own share of the stage, not the other shards' trials.
                let share = keys.filter { owns($0) && (assigned?.contains($0) ?? true) }.count
                observer?.roundStarted(round: round, rung: r, rungs: rungs.count, trials: share)
                var results: [TrialResult] = []
                var missing: [TrialKey] = []
                // Every trial of the stage this process can obtain, before giving up on the missing ones: a shard
                // trains all of its share even when another shard's trials come first in the order.
                for key in keys {
                    let from = previous.map { TrialKey(mask: key.mask, seed: key.seed, steps: $0) }
                    let mine = owns(key) && (assigned?.contains(key) ?? true)
                    guard let result = try obtain(key, continuing: from, round: round, owned: mine) else {
                        missing.append(key)
                        continue
                    }
                    trainingSteps += result.stepsTrained
                    results.append(result)
                }
                if !missing.isEmpty {
                    return Outcome(candidates: evaluated, pruned: pruned, trainingSteps: trainingSteps,
                                   rounds: round, waitingForOtherShards: true, waitingStage: stage, missing: missing)
                }
                let candidates = Candidate.group(results)
                if r == rungs.count - 1 {
                    evaluated += candidates
                } else {
                    let keep = halving!.select(candidates)
                    pruned += candidates.filter { c in !keep.contains { $0.mask == c.mask } }
                    alive = keep.map(\.mask)
                }
            }
            round += 1
        }
        return Outcome(candidates: evaluated, pruned: pruned, trainingSteps: trainingSteps, rounds: round,
                       waitingForOtherShards: false)
    }

    /// The stored result of `key`, or a new one trained now when this shard owns it; nil when another shard
    /// owns it and has not stored it yet.
    private func obtain(_ key: TrialKey, continuing from: TrialKey?, round: Int, owned: Bool) throws -> TrialResult? {
        if let stored = storage.result(for: key) {
            if owned { observer?.trialSkipped(key) }
            return stored
        }
        guard owned else { return nil }
        try Interruption.check()   // between trials: nothing is lost by stopping here
        observer?.trialStarted(key, round: round)
        let continuing = from.flatMap { storage.result(for: $0) != nil ? $0 : nil }
        var result = try runner.run(key, continuing: continuing) { observer?.trialProgress(key, $0) }
        if let continuing, let earlier = storage.result(for: continuing) {
            result.curve = earlier.curve + result.curve   // the whole learning curve of this trial
        }
        try storage.save(result)
        observer?.trialFinished(result)
        return result
    }

    private func uniqued(_ masks: [SharingMask]) -> [SharingMask] {
        var seen = Set<SharingMask>()
        return masks.filter { seen.insert($0).inserted }
    }
}

/// Hears what a study does, for progress output.
public protocol StudyObserver: AnyObject {
    /// A round (or a successive-halving rung of it) is about to obtain `trials` trials.
    func roundStarted(round: Int, rung: Int, rungs: Int, trials: Int)
    func trialStarted(_ key: TrialKey, round: Int)
    func trialProgress(_ key: TrialKey, _ progress: TrialProgress)
    func trialFinished(_ result: TrialResult)
    func trialSkipped(_ key: TrialKey)
}

/// A request to stop a study cleanly (SIGINT, SIGTERM): set from a signal handler, checked by the study
/// between trials and by the trial runner at every training step. The trial in progress is dropped, never
/// stored half-done; every finished trial is already in the storage.
public enum Interruption {
    private static let requested = Atomic<Int32>(0)

    /// Records that `signal` asked the process to stop (safe from any thread).
    public static func request(signal: Int32) { requested.store(signal, ordering: .sequentiallyConsistent) }

    /// The signal that asked to stop, or nil.
    public static var requestedSignal: Int32? {
        let s = requested.load(ordering: .sequentiallyConsistent)
        return s == 0 ? nil : s
    }

    /// Throws `Interrupted` once a stop has been requested: call it at points where stopping loses nothing
    /// that is stored.
    public static func check() throws {
        if let s = requestedSignal { throw Interrupted(signal: s) }
    }

    /// Clears a request (tests).
    public static func reset() { requested.store(0, ordering: .sequentiallyConsistent) }
}

/// A study stopped by `Interruption`: what was stored is complete, the trial in progress was dropped.
public struct Interrupted: Error, CustomStringConvertible {
    public var signal: Int32
    public init(signal: Int32) { self.signal = signal }
    public var description: String { "interrupted by signal \(signal)" }
}
