import LayerSplitEngine
import LayerSplitSearch
import XCTest

/// A shard's view: the merged trials (read-only) plus its own, which it alone writes.
final class ShardView: TrialStorage {
    let merged: InMemoryTrialStorage
    let own = InMemoryTrialStorage()
    init(merged: InMemoryTrialStorage) { self.merged = merged }
    func result(for key: TrialKey) -> TrialResult? { merged.result(for: key) ?? own.result(for: key) }
    func save(_ result: TrialResult) throws { try own.save(result) }
    var results: [TrialResult] { merged.results + own.results }
}

/// `Study.assign`: shards train disjoint shares of each stage, stop at the first stage whose other trials are
/// missing, and a study over the union of their trials equals a single process's.
final class ShardedStudyTests: XCTestCase {
    let spec = ModelSpec(inputShape: [4], units: [.linear(8), .linear(6), .linear(5), .linear(3)], taskClasses: [2, 2])
    let gains = [0.04, -0.01, 0.06, 0.05]

    func domain(_ budget: Budget = .unlimited) throws -> SearchDomain {
        SearchDomain(allowed: Array(repeating: [.shared, .specific], count: 4), budget: budget, parameters: try ParameterModel(spec: spec))
    }

    /// Round-robin over each stage's trials by position: enough for the study's contract (any deterministic
    /// function of the stage works; LayerSplitRun's ShardPlan balances by cost).
    func assign(_ shard: Int, of shards: Int) -> (Study.Stage) -> Set<TrialKey> {
        { stage in Set(stage.keys.enumerated().filter { $0.offset % shards == shard }.map(\.element)) }
    }

    /// Runs `shards` shards stage after stage, merging their trials between stages, until a study over the
    /// merged trials finishes; returns that outcome, every trained key (in order) and the number of stages.
    func runSharded(_ strategy: SearchStrategy, shards: Int, halving: SuccessiveHalving? = nil,
                    runner: SyntheticRunner) throws -> (Study.Outcome, [TrialKey], Int) {
        let merged = InMemoryTrialStorage()
        for stages in 1...50 {
            for s in 0..<shards {
                let view = ShardView(merged: merged)
                let study = Study(strategy: strategy, seeds: [0, 1], steps: 90, halving: halving, storage: view, runner: runner)
                study.assign = assign(s, of: shards)
                let outcome = try study.optimize()
                if outcome.waitingForOtherShards {
                    XCTAssertNotNil(outcome.waitingStage)
                    XCTAssertFalse(outcome.missing.isEmpty)
                    XCTAssertTrue(outcome.missing.allSatisfy { view.result(for: $0) == nil })
                }
                for r in view.own.results { try merged.save(r) }
            }
            let check = Study(strategy: strategy, seeds: [0, 1], steps: 90, halving: halving, storage: merged, runner: runner)
            check.owns = { _ in false }
            let outcome = try check.optimize()
            if !outcome.waitingForOtherShards { return (outcome, runner.calls, stages) }
        }
        XCTFail("the sharded study did not finish in 50 stages")
        throw XCTSkip("unreachable")
    }

    func testShardedStudiesEqualTheSingleProcessOne() throws {
        let d = try domain(.maxParams(try ParameterModel(spec: spec).allSharedCount + 120))
        let cases: [(String, SearchStrategy, SuccessiveHalving?)] = [
            ("exhaustive", ExhaustiveStrategy(domain: d), nil),
            ("exhaustive with halving", ExhaustiveStrategy(domain: d), SuccessiveHalving(minSteps: 10, eta: 3)),
            ("greedy", GreedyStrategy(domain: d), nil),
            ("greedy with halving", GreedyStrategy(domain: d), SuccessiveHalving(minSteps: 30, eta: 3)),
        ]
        for (name, strategy, halving) in cases {
            let singleRunner = SyntheticRunner(gains: gains, parameters: d.parameters)
            let single = try Study(strategy: strategy, seeds: [0, 1], steps: 90, halving: halving,
                                   storage: InMemoryTrialStorage(), runner: singleRunner).optimize()
            for shards in [1, 2, 3, 7] {
                let runner = SyntheticRunner(gains: gains, parameters: d.parameters)
                let (sharded, calls, stages) = try runSharded(strategy, shards: shards, halving: halving, runner: runner)
                XCTAssertEqual(sharded.candidates, single.candidates, "\(name), \(shards) shards")
                XCTAssertEqual(sharded.pruned, single.pruned, "\(name), \(shards) shards")
                XCTAssertEqual(sharded.trainingSteps, single.trainingSteps, "\(name), \(shards) shards")
                XCTAssertEqual(sharded.rounds, single.rounds, "\(name), \(shards) shards")
                XCTAssertEqual(calls.count, Set(calls).count, "\(name), \(shards) shards: a trial trained twice")
                XCTAssertEqual(Set(calls), Set(singleRunner.calls), "\(name), \(shards) shards: other trials trained")
                if halving == nil && strategy is ExhaustiveStrategy { XCTAssertEqual(stages, 1, name) }
            }
        }
    }

    func testAShardTrainsItsWholeShareEvenWhenOthersTrialsComeFirst() throws {
        let d = try domain()
        let runner = SyntheticRunner(gains: gains, parameters: d.parameters)
        let study = Study(strategy: ExhaustiveStrategy(domain: d), seeds: [0, 1], steps: 90,
                          storage: InMemoryTrialStorage(), runner: runner)
        // Shard 1 of 2 owns the odd positions: the very first trial is not its own.
        var stages: [Study.Stage] = []
        study.assign = { stage in
            stages.append(stage)
            return Set(stage.keys.enumerated().filter { $0.offset % 2 == 1 }.map(\.element))
        }
        let outcome = try study.optimize()
        XCTAssertTrue(outcome.waitingForOtherShards)
        XCTAssertEqual(runner.calls.count, 16, "all 16 of its 32 trials, though trial 0 is missing")
        XCTAssertEqual(outcome.missing.count, 16)
        XCTAssertEqual(Set(outcome.missing).union(runner.calls), Set(stages[0].keys))
        XCTAssertEqual(outcome.waitingStage?.index, 0)
        XCTAssertEqual(outcome.waitingStage?.description, "stage 0 (round 1)")
        XCTAssertTrue(outcome.candidates.isEmpty, "no candidate before the stage is whole")
    }

    func testStagesAreRungsWithinRounds() throws {
        let d = try domain()
        var stages: [Study.Stage] = []
        let study = Study(strategy: ExhaustiveStrategy(domain: d), seeds: [0], steps: 90,
                          halving: SuccessiveHalving(minSteps: 10, eta: 3), storage: InMemoryTrialStorage(),
                          runner: SyntheticRunner(gains: gains, parameters: d.parameters))
        study.assign = { stages.append($0); return Set($0.keys) }
        _ = try study.optimize()
        XCTAssertEqual(stages.map(\.index), [0, 1, 2])
        XCTAssertEqual(stages.map(\.rung), [0, 1, 2])
        XCTAssertEqual(stages.map(\.continuingFrom), [nil, 10, 30])
        XCTAssertEqual(stages.map(\.keys.count), [16, 6, 2])
        XCTAssertEqual(stages[1].description, "stage 1 (round 1, rung 2/3)")
    }

    func testUnassignedStudyIsUnchanged() throws {
        let d = try domain()
        let runner = SyntheticRunner(gains: gains, parameters: d.parameters)
        let outcome = try Study(strategy: GreedyStrategy(domain: d), seeds: [0, 1], steps: 90,
                                storage: InMemoryTrialStorage(), runner: runner).optimize()
        XCTAssertFalse(outcome.waitingForOtherShards)
        XCTAssertNil(outcome.waitingStage)
        XCTAssertTrue(outcome.missing.isEmpty)
    }
}
