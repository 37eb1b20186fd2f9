import LayerSplitEngine
import LayerSplitSearch
import XCTest

/// A runner whose "accuracy" is a known function of the mask: each task-specific unit u adds `gains[u]`,
/// plus a small per-seed offset, so that every strategy's best answer is known in advance.
final class SyntheticRunner: TrialRunner {
    let gains: [Double]
    let parameters: ParameterModel
    var calls: [TrialKey] = []
    var failAfter: Int?

    init(gains: [Double], parameters: ParameterModel) {
        self.gains = gains
        self.parameters = parameters
    }

    struct Killed: Error {}

    func run(_ key: TrialKey, continuing from: TrialKey?, progress: (TrialProgress) -> Void) throws -> TrialResult {
        if let n = failAfter, calls.count >= n { throw Killed() }
        calls.append(key)
        let gain = zip(key.mask.states, gains).reduce(0.0) { $0 + ($1.0 == .specific ? $1.1 : 0) }
        // Longer training helps every mask equally; seeds shift every mask equally (paired noise).
        let acc = 0.5 + gain + Double(key.steps) * 1e-4 + Double(key.seed) * 0.01
        return TrialResult(key: key, state: .done, counts: parameters.counts(for: key.mask), accuracy: [acc, acc],
                           loss: [0, 0], curve: [], stepsTrained: key.steps - (from?.steps ?? 0), seconds: 0)
    }
}

final class SearchTests: XCTestCase {
    let spec = ModelSpec(inputShape: [4], units: [.linear(8), .linear(6), .linear(5), .linear(3)], taskClasses: [2, 2])

    func domain(_ budget: Budget, states: [SharingState] = [.shared, .specific]) throws -> SearchDomain {
        SearchDomain(allowed: Array(repeating: states, count: 4), budget: budget, parameters: try ParameterModel(spec: spec))
    }

    // MARK: - Pareto front

    func testFrontMatchesBruteForceOnRandomPoints() {
        var rng = SplitMix64(seed: 1)
        for trial in 0..<300 {
            let n = trial == 0 ? 1 : Int(rng.next() % 40) + 1
            // Few distinct values, so that ties and duplicates are common.
            let params = (0..<n).map { _ in Int(rng.next() % 8) * 100 }
            let acc = (0..<n).map { _ in Double(rng.next() % 6) / 10 }
            XCTAssertEqual(Set(ParetoFront.indices(params: params, accuracy: acc)),
                           Set(ParetoFront.bruteForce(params: params, accuracy: acc)), "points \(Array(zip(params, acc)))")
        }
        XCTAssertEqual(ParetoFront.indices(params: [5], accuracy: [0.3]), [0])
        XCTAssertEqual(ParetoFront.indices(params: [5, 5], accuracy: [0.3, 0.3]), [0, 1], "exact duplicates both stay")
        XCTAssertEqual(ParetoFront.indices(params: [1, 2, 3], accuracy: [0.5, 0.4, 0.9]), [0, 2])
        XCTAssertEqual(ParetoFront.ranks(params: [1, 2, 3], accuracy: [0.5, 0.4, 0.9]), [0, 1, 0])
    }

    // MARK: - Enumeration and budgets

    func testExhaustiveCountsPerBudget() throws {
        let pm = try ParameterModel(spec: spec)
        // Units: 4·8+8 = 40, 8·6+6 = 54, 6·5+5 = 35, 5·3+3 = 18; heads 2·(3·2+2) = 16; T = 2.
        XCTAssertEqual(pm.unitCounts, [40, 54, 35, 18])
        XCTAssertEqual(pm.allSharedCount, 40 + 54 + 35 + 18 + 16)
        XCTAssertEqual(MaskEnumerator(allowed: Array(repeating: [.shared, .specific], count: 4)).totalCount, 16)
        XCTAssertEqual(MaskEnumerator(allowed: Array(repeating: [.shared, .specific, .adapter], count: 5)).totalCount, 243)
        // A specific unit adds its size once more (T = 2). Count by brute force over subsets.
        for limit in [0, 18, 35, 53, 54, 100, 147] {
            let budget = Budget.maxParams(pm.allSharedCount + limit)
            let expected = (0..<16).filter { bits in
                (0..<4).reduce(0) { $0 + ((bits >> (3 - $1)) & 1 == 1 ? pm.unitCounts[$1] : 0) } <= limit
            }.count
            XCTAssertEqual(try domain(budget).allMasks.count, expected, "extra ≤ \(limit)")
        }
        XCTAssertEqual(try domain(.maxSpecificFraction(0)).allMasks, [.all(.shared, units: 4)])
        XCTAssertEqual(try domain(.unlimited).allMasks.count, 16)
        XCTAssertEqual(Set(try domain(.unlimited).allMasks).count, 16, "no duplicates")
    }

    func testBudgetParsingAndFormatting() {
        XCTAssertEqual(parseCount("1.2M"), 1_200_000)
        XCTAssertEqual(parseCount("350k"), 350_000)
        XCTAssertEqual(parseCount("1_000"), 1000)
        XCTAssertNil(parseCount("lots"))
        XCTAssertEqual(formatCount(1_200_000), "1.2M")
        XCTAssertEqual(formatCount(812), "812")
    }

    func testFamilies() {
        XCTAssertEqual(MaskFamily.label(try SharingMask(parsing: "TTSS")), "bottom-2")
        XCTAssertEqual(MaskFamily.label(try SharingMask(parsing: "SSST")), "top-1")
        XCTAssertEqual(MaskFamily.label(try SharingMask(parsing: "SSSS")), "all-shared")
        XCTAssertEqual(MaskFamily.label(try SharingMask(parsing: "TTTT")), "all-specific")
        XCTAssertEqual(MaskFamily.label(try SharingMask(parsing: "STST")), "other")
        XCTAssertEqual(MaskFamily.standardMasks(units: 3).map(\.description), ["SSS", "TSS", "TTS", "SST", "STT", "TTT"])
    }

    // MARK: - Strategies

    func runStudy(_ strategy: SearchStrategy, runner: SyntheticRunner, storage: TrialStorage = InMemoryTrialStorage(),
                  seeds: [UInt64] = [0, 1], halving: SuccessiveHalving? = nil) throws -> Study.Outcome {
        try Study(strategy: strategy, seeds: seeds, steps: 90, halving: halving, storage: storage, runner: runner).optimize()
    }

    func testGreedyFindsTheKnownOptimumPath() throws {
        let d = try domain(.maxParams(try ParameterModel(spec: spec).allSharedCount + 60))
        // Gain per added parameter: unit 4 (0.05/18) beats unit 3 (0.06/35) beats unit 1 (0.04/40); unit 2 hurts.
        let runner = SyntheticRunner(gains: [0.04, -0.01, 0.06, 0.05], parameters: d.parameters)
        let outcome = try runStudy(GreedyStrategy(domain: d), runner: runner)
        let best = outcome.candidates.max { $0.meanAccuracy < $1.meanAccuracy }!
        // Budget 60 extra: after SSST (18) the only fitting switch with positive gain is SSTT (53).
        XCTAssertEqual(best.mask.description, "SSTT")
        let exhaustiveBest = try runStudy(ExhaustiveStrategy(domain: d), runner: SyntheticRunner(gains: runner.gains, parameters: d.parameters))
            .candidates.max { $0.meanAccuracy < $1.meanAccuracy }!
        XCTAssertEqual(best.mask, exhaustiveBest.mask)
        XCTAssertEqual(Set(runner.calls).count, runner.calls.count, "no trial trained twice")
        // Without a budget the path goes SSSS → SSST → SSTT → TSTT → TTTT: 1 + 4 + 3 + 2 + 1 of 16 masks.
        let open = try domain(.unlimited)
        let unlimited = SyntheticRunner(gains: runner.gains, parameters: open.parameters)
        let path = try runStudy(GreedyStrategy(domain: open), runner: unlimited)
        XCTAssertEqual(path.candidates.count, 11)
        XCTAssertEqual(path.rounds, 5)
    }

    func testSuccessiveHalvingKeepsTheBestAndTrainsLess() throws {
        let d = try domain(.unlimited)
        let gains = [0.04, -0.01, 0.06, 0.05]
        let full = SyntheticRunner(gains: gains, parameters: d.parameters)
        let exhaustive = try runStudy(ExhaustiveStrategy(domain: d), runner: full)
        let halvingRunner = SyntheticRunner(gains: gains, parameters: d.parameters)
        let sh = SuccessiveHalving(minSteps: 10, eta: 3)
        XCTAssertEqual(sh.rungs(fullSteps: 90), [10, 30, 90])
        let halved = try runStudy(ExhaustiveStrategy(domain: d), runner: halvingRunner, halving: sh)
        XCTAssertLessThan(halved.trainingSteps, exhaustive.trainingSteps / 2)
        // The all-specific mask is the most accurate; it is on the front at every rung, so it survives.
        XCTAssertTrue(halved.candidates.contains { $0.mask.description == "TSTT" })
        XCTAssertTrue(halved.candidates.contains { $0.mask.description == "SSSS" }, "the smallest mask is on the front")
        // Survivors continue their shorter trials.
        XCTAssertTrue(halvingRunner.calls.contains { $0.steps == 90 })
        XCTAssertEqual(halved.pruned.count + halved.candidates.count, 16)
    }

    func testRandomIsDistinctAndSeeded() throws {
        let d = try domain(.unlimited)
        let a = RandomStrategy(domain: d, count: 5, seed: 3).nextRound(after: [], round: 0)!
        XCTAssertEqual(a, RandomStrategy(domain: d, count: 5, seed: 3).nextRound(after: [], round: 0))
        XCTAssertEqual(Set(a).count, 5)
        XCTAssertNotEqual(a, RandomStrategy(domain: d, count: 5, seed: 4).nextRound(after: [], round: 0))
        XCTAssertEqual(RandomStrategy(domain: d, count: 50, seed: 3).nextRound(after: [], round: 0)!.count, 16)
    }

    func testResumeAfterKillLosesAndRepeatsNothing() throws {
        let d = try domain(.unlimited)
        let storage = InMemoryTrialStorage()
        let first = SyntheticRunner(gains: [0.01, 0.02, 0.03, 0.04], parameters: d.parameters)
        first.failAfter = 11
        XCTAssertThrowsError(try runStudy(ExhaustiveStrategy(domain: d), runner: first, storage: storage))
        XCTAssertEqual(storage.results.count, 11)
        let second = SyntheticRunner(gains: first.gains, parameters: d.parameters)
        let outcome = try runStudy(ExhaustiveStrategy(domain: d), runner: second, storage: storage)
        XCTAssertEqual(second.calls.count, 32 - 11, "only the missing trials are trained")
        XCTAssertTrue(Set(second.calls).isDisjoint(with: first.calls))
        XCTAssertEqual(outcome.candidates.count, 16)
        XCTAssertTrue(outcome.candidates.allSatisfy { $0.trials.count == 2 })
    }

    func testPairedDifference() throws {
        let d = try domain(.unlimited)
        let outcome = try runStudy(FamiliesStrategy(domain: d), runner: SyntheticRunner(gains: [0.1, 0, 0, 0], parameters: d.parameters),
                                   seeds: [0, 1, 2])
        let a = outcome.candidates.first { $0.mask.description == "SSSS" }!
        let b = outcome.candidates.first { $0.mask.description == "TSSS" }!
        let diff = PairedDifference(a, b)
        XCTAssertEqual(diff.mean, 0.1, accuracy: 1e-12)
        XCTAssertEqual(diff.std, 0, accuracy: 1e-12, "pairing removes the per-seed offset")
        XCTAssertEqual([diff.winsB, diff.winsA, diff.seeds], [3, 0, 3])
        XCTAssertGreaterThan(a.stdAccuracy, 0, "unpaired, the seed offset shows")
    }
}
