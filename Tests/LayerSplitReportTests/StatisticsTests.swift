import Foundation
import LayerSplitEngine
import LayerSplitReport
@testable import LayerSplitSearch
import XCTest

/// The statistics every report shares: Student t quantiles, paired intervals and verdicts, the cheapest
/// indistinguishable mask for a budget, and honest matched-budget comparisons.
final class StatisticsTests: XCTestCase {
    /// A candidate whose seed k has mean accuracy `acc[k]` (both tasks equal).
    func candidate(_ mask: String, stored: Int, acc: [Double]) throws -> Candidate {
        let m = try SharingMask(parsing: mask)
        let counts = ParameterCounts(shared: stored - 10, specific: 0, heads: 10)
        let trials = acc.enumerated().map { seed, a in
            TrialResult(key: TrialKey(mask: m, seed: UInt64(seed), steps: 100), state: .done, counts: counts,
                        accuracy: [a, a], loss: [0.1, 0.1], curve: [], stepsTrained: 100, seconds: 1)
        }
        return Candidate(mask: m, steps: 100, counts: counts, trials: trials)
    }

    func report(_ cs: [Candidate]) -> FrontReport {
        FrontReport(study: "stats", taskNames: ["a", "b"], candidates: cs, allSharedCount: 100)
    }

    // MARK: Student t

    func testStudentTQuantilesMatchKnownValues() {
        let known: [(p: Double, df: Int, t: Double)] = [
            (0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 4, 2.776), (0.975, 9, 2.262), (0.975, 29, 2.045),
            (0.975, 30, 2.042), (0.975, 60, 2.000), (0.975, 120, 1.980), (0.975, 1000, 1.962), (0.975, 100_000, 1.960),
            (0.95, 10, 1.812), (0.995, 5, 4.032), (0.995, 1, 63.657), (0.9, 3, 1.638), (0.995, 2000, 2.578),
        ]
        for k in known {
            XCTAssertEqual(StudentT.quantile(k.p, degreesOfFreedom: k.df), k.t, accuracy: 5e-4, "t(\(k.p), \(k.df))")
            XCTAssertEqual(StudentT.quantile(1 - k.p, degreesOfFreedom: k.df), -k.t, accuracy: 5e-4, "symmetric")
        }
        XCTAssertEqual(StudentT.quantile(0.5, degreesOfFreedom: 7), 0)
        XCTAssertEqual(StudentT.cdf(12.706, degreesOfFreedom: 1), 0.975, accuracy: 1e-5)
        XCTAssertEqual(StudentT.cdf(-2.7764451, degreesOfFreedom: 4), 0.025, accuracy: 1e-7)
    }

    /// The table, the exact inversion and the Cornish–Fisher expansion agree where they meet.
    func testStudentTTableAgreesWithExactDistribution() {
        for df in 1...30 {
            let exact = StudentT.invert(0.975) { StudentT.cdf($0, degreesOfFreedom: df) }
            XCTAssertEqual(StudentT.table975[df - 1], exact, accuracy: 6e-5, "df \(df)")
        }
        for p in [0.9, 0.975, 0.995] {
            let exact = StudentT.invert(p) { StudentT.cdf($0, degreesOfFreedom: 1001) }
            XCTAssertEqual(StudentT.cornishFisher(p, degreesOfFreedom: 1001), exact, accuracy: 1e-7, "p \(p)")
        }
    }

    // MARK: Intervals and verdicts

    func testIntervalAndVerdict() throws {
        // Differences of 2.0, 2.1 and 2.2 points: mean 2.1, std 0.1, t(0.975, 2) = 4.303.
        let d = PairedDifference(differences: [0.020, 0.021, 0.022])
        let ci = try XCTUnwrap(d.interval())
        XCTAssertEqual(ci.lowerBound, 0.021 - 4.3027 * 0.001 / 3.0.squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(ci.upperBound, 0.021 + 4.3027 * 0.001 / 3.0.squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(d.verdict, .better)
        XCTAssertEqual(d.cellText(), "+2.10 ± 0.10 (3/3), 95% CI [+1.85, +2.35]: better")
        XCTAssertEqual(PairedDifference(differences: [-0.020, -0.021, -0.022]).verdict, .worse)
        XCTAssertEqual(d.verdict(level: 0.9999), .indistinguishable, "t(0.99995, 2) ≈ 100: wide enough to hold 0")
        // 1, 2, 3 points: the interval [-0.48, +4.48] holds 0 although every seed wins.
        let e = PairedDifference(differences: [0.01, 0.02, 0.03])
        XCTAssertEqual(e.winsB, 3)
        XCTAssertEqual(e.verdict, .indistinguishable)
        XCTAssertEqual(e.cellText(), "+2.00 ± 1.00 (3/3), 95% CI [-0.48, +4.48]: indistinguishable")

        let one = PairedDifference(differences: [0.05])
        XCTAssertNil(one.interval())
        XCTAssertEqual(one.verdict, .oneSeed)
        XCTAssertEqual("\(one.verdict)", "one seed: no interval")
        XCTAssertEqual(one.cellText(), "+5.00 ± 0.00 (1/1): one seed: no interval")
        XCTAssertEqual(PairedDifference(differences: []).verdict, .noSeeds)
        XCTAssertEqual(PairedDifference(differences: [0, 0, 0]).verdict, .indistinguishable, "no std and no difference")
        XCTAssertEqual(PairedDifference(differences: [0.01, 0.01]).verdict, .better, "every seed agrees exactly")
    }

    /// The issue's pick: STTS over all-shared at +0.33 ± 0.55 points over 5 seeds (3/5 wins) is not better.
    func testTheIssuesPickIsIndistinguishable() {
        let diffs = [0.00905, -0.00312, 0.00684, -0.00201, 0.00573]
        let d = PairedDifference(differences: diffs)
        XCTAssertEqual(d.mean * 100, 0.33, accuracy: 0.01)
        XCTAssertEqual(d.std * 100, 0.55, accuracy: 0.01)
        XCTAssertEqual(d.winsB, 3)
        XCTAssertEqual(d.verdict, .indistinguishable)
        XCTAssertTrue(d.interval()!.contains(0))
    }

    /// Target of the issue: no step or pick is called better when its interval contains 0; and a one-seed
    /// difference is never better, however large.
    func testNothingWhoseIntervalContainsZeroIsCalledBetter() {
        var rng = SplitMix64(seed: 7)
        for trial in 0..<2_000 {
            let n = 1 + trial % 12
            let shift = Double(Int(rng.next() % 21) - 10) / 1000
            let diffs = (0..<n).map { _ in shift + Double(Int(rng.next() % 2001) - 1000) / 100_000 }
            let d = PairedDifference(differences: diffs)
            for level in [0.9, 0.95, 0.99] {
                let v = d.verdict(level: level)
                guard let ci = d.interval(level: level) else { XCTAssertEqual(v, .oneSeed); continue }
                if ci.contains(0) { XCTAssertEqual(v, .indistinguishable, "\(diffs)") }
                if v == .better { XCTAssertGreaterThan(ci.lowerBound, 0) }
                if v == .worse { XCTAssertLessThan(ci.upperBound, 0) }
                if let p = d.pValue, v == .better || v == .worse { XCTAssertLessThanOrEqual(p, 1 - level + 1e-9) }
            }
        }
    }

    func testSeedsToSeparate() {
        // +0.33 ± 0.55 points: the smallest n with t(n − 1) · 0.55 / √n < 0.33 is 14.
        var d = PairedDifference(differences: [0.01, 0.02])
        d.mean = 0.0033
        d.std = 0.0055
        XCTAssertEqual(d.seedsToSeparate(), .seeds(14))
        XCTAssertEqual("\(d.seedsToSeparate())", "about 14")
        d.mean = 0.00001
        XCTAssertEqual(d.seedsToSeparate(), .moreThan(1000))
        XCTAssertEqual("\(d.seedsToSeparate())", "more than 1000")
        d.mean = 0
        XCTAssertEqual("\(d.seedsToSeparate())", "cannot: mean difference 0")
        XCTAssertEqual(PairedDifference(differences: [0.1]).seedsToSeparate(), .oneSeed)
    }

    func testHolmBonferroni() {
        XCTAssertEqual(MultipleComparisons.holm([0.01, 0.04, 0.03, 0.005]), [true, false, false, true])
        XCTAssertEqual(MultipleComparisons.holm([0.001, 0.002]), [true, true])
        XCTAssertEqual(MultipleComparisons.holm([]), [])
        let note = try! XCTUnwrap(MultipleComparisons.note([
            PairedDifference(differences: [0.01, 0.011, 0.012]), PairedDifference(differences: [0.01, -0.01, 0.0]),
            PairedDifference(differences: [0.5]),
        ]))
        XCTAssertTrue(note.contains("2 paired comparisons at 95%"), note)
        XCTAssertTrue(note.contains("about 0.1 \"better\"/\"worse\" verdicts are expected by chance"), note)
        XCTAssertTrue(note.contains("1 of 2 read better or worse, 1 survives Holm–Bonferroni"), note)
        XCTAssertTrue(note.contains("97.50%"), note)
        XCTAssertNil(MultipleComparisons.note([PairedDifference(differences: [0.01, 0.02])]), "one comparison needs no note")
    }

    // MARK: Budgets

    /// TT is the most accurate; TS is cheaper and within the noise of TT; SS is clearly worse.
    func budgetReport() throws -> FrontReport {
        report([
            try candidate("SS", stored: 100, acc: [0.70, 0.71, 0.70, 0.72, 0.71]),
            try candidate("ST", stored: 150, acc: [0.80, 0.79, 0.81, 0.80, 0.78]),
            try candidate("TS", stored: 140, acc: [0.815, 0.80, 0.825, 0.79, 0.80]),
            try candidate("TT", stored: 200, acc: [0.81, 0.81, 0.82, 0.80, 0.81]),
        ])
    }

    func testCheapestIndistinguishablePick() throws {
        let r = try budgetReport()
        let a = try XCTUnwrap(r.answer(under: .unlimited))
        XCTAssertEqual(a.best.mask.description, "TT")
        XCTAssertEqual(a.cheapest.mask.description, "TS", "ST (150) is indistinguishable too, but TS (140) is cheaper; SS is worse")
        let d = try XCTUnwrap(a.difference)
        XCTAssertEqual(d.verdict, .indistinguishable)
        XCTAssertTrue(d.interval()!.contains(0))
        XCTAssertEqual(PairedDifference(a.best, try XCTUnwrap(r.candidates.first { $0.mask.description == "SS" })).verdict, .worse)
        guard case .seeds(let n)? = a.seedsToSeparate else { return XCTFail("\(String(describing: a.seedsToSeparate))") }
        XCTAssertGreaterThan(n, 5, "they are indistinguishable with 5 seeds")
        XCTAssertEqual(a.lines[0], "TT  all-specific  200 params (200)  mean accuracy 0.8100 ± 0.0071 over 5 seed(s)")
        XCTAssertTrue(a.lines[1].hasPrefix("cheapest mask indistinguishable from it (95% paired interval contains 0): TS  bottom-1  140 params"), a.lines[1])
        XCTAssertTrue(a.lines[2].contains("TS − TT (points): ") && a.lines[2].contains(": indistinguishable"), a.lines[2])
        XCTAssertTrue(a.lines[3].contains("seeds that would separate them, from the paired std: about \(n)"), a.lines[3])

        let tight = try XCTUnwrap(r.answer(under: .maxParams(139)))
        XCTAssertEqual(tight.best.mask.description, "SS")
        XCTAssertEqual(tight.cheapest.mask.description, "SS", "nothing cheaper")
        XCTAssertNil(tight.difference)
        XCTAssertEqual(tight.lines[1], "cheapest mask indistinguishable from it: SS itself (it is the cheapest mask that fits)")
        let mid = try XCTUnwrap(r.answer(under: .maxParams(160)))
        XCTAssertEqual(mid.best.mask.description, "TS")
        XCTAssertEqual(mid.cheapest.mask.description, "TS", "SS is worse")
        XCTAssertEqual(mid.lines[1], "cheapest mask indistinguishable from it: TS itself (none of the cheaper masks that fit (1) is indistinguishable from it at 95%)")
        XCTAssertEqual(mid.runnerUp?.mask.description, "SS")
        XCTAssertEqual(mid.runnerUpDifference?.verdict, .worse)
        XCTAssertTrue(mid.lines[3].hasPrefix("  SS − TS (points): ") && mid.lines[3].hasSuffix(": worse"), mid.lines[3])

        let md = SummaryWriter.markdown(r, provenance: .init(command: "x", wallSeconds: 1, machine: "m", trainingSteps: 1))
        XCTAssertTrue(md.contains("| no budget | — | `TT` | 200 | 81.00 ± 0.71 | `TS` | 140 | "), md)
    }

    func testOneSeedIsNeverBetterAndPicksNothingCheaper() throws {
        let r = report([
            try candidate("SS", stored: 100, acc: [0.70]), try candidate("TS", stored: 150, acc: [0.90]),
        ])
        XCTAssertEqual(r.neighbourDifferences[1]?.verdict, .oneSeed)
        let a = try XCTUnwrap(r.answer(under: .unlimited))
        XCTAssertTrue(a.oneSeed)
        XCTAssertEqual(a.cheapest.mask, a.best.mask)
        XCTAssertEqual(a.lines[1], "cheapest indistinguishable mask: cannot tell (one seed: no interval)")
        let md = SummaryWriter.markdown(r, provenance: .init(command: "x", wallSeconds: 1, machine: "m", trainingSteps: 1))
        XCTAssertTrue(md.contains("| +20.00 ± 0.00, wins 1/1 | one seed: no interval | one seed: no interval |"), md)
        XCTAssertFalse(md.contains(": better"), "one seed is never better")
        XCTAssertTrue(md.contains("0 of 1 front steps are better"), md)
        let csv = TableWriter.frontCSV(r).split(separator: "\n")
        XCTAssertTrue(csv[2].hasSuffix(",0.200000,0.000000,1,0,,,one-seed"), String(csv[2]))
        XCTAssertTrue(FrontPlot.svg(r).contains("stroke-dasharray"), "the step is dashed")
    }

    // MARK: Front outputs

    func testFrontStepsCarryIntervalsEverywhere() throws {
        // SS → TS is a clear gain; TS → TT (+0.5 points, noisy) is not.
        let r = report([
            try candidate("SS", stored: 100, acc: [0.70, 0.71, 0.70, 0.72]),
            try candidate("TS", stored: 150, acc: [0.80, 0.81, 0.80, 0.80]),
            try candidate("TT", stored: 200, acc: [0.82, 0.80, 0.81, 0.80]),
        ])
        XCTAssertEqual(r.front.count, 3)
        XCTAssertEqual(r.neighbourDifferences.map { $0?.verdict }, [nil, .better, .indistinguishable])
        let md = SummaryWriter.markdown(r, provenance: .init(command: "x", wallSeconds: 1, machine: "m", trainingSteps: 1))
        XCTAssertTrue(md.contains("| vs previous (paired) | 95% CI | verdict |"), md)
        XCTAssertTrue(md.contains("| `TT` | all-specific | 200 (200) | 80.75 | 0.96 | 80.75 | 80.75 | +0.50 ± 1.29, wins 2/4 | [-1.55, +2.55] | indistinguishable |"), md)
        XCTAssertTrue(md.contains("1 of 2 front steps are better than the previous point at 95%"), md)

        let csv = TableWriter.frontCSV(r).split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertTrue(csv[0].hasSuffix(",delta_vs_previous,delta_std,wins,losses,delta_ci_low,delta_ci_high,verdict"), String(csv[0]))
        XCTAssertTrue(csv[1].hasSuffix(",,,,,,,"), "no previous point")
        XCTAssertTrue(csv[2].hasSuffix(",better"))
        let fields = csv[3].split(separator: ",", omittingEmptySubsequences: false)
        XCTAssertEqual(fields.suffix(3).first.flatMap { Double($0) } ?? 0, -0.015542, accuracy: 1e-5, "fractions, not points")
        XCTAssertEqual(fields.last, "indistinguishable")

        let json = try JSONSerialization.jsonObject(with: Data(TableWriter.frontJSON(r).utf8)) as! [String: Any]
        let last = try XCTUnwrap((json["front"] as! [[String: Any]]).last?["vs_previous"] as? [String: Any])
        XCTAssertEqual(last["verdict"] as? String, "indistinguishable")
        XCTAssertEqual(try XCTUnwrap(last["ci_high"] as? Double), 0.025542, accuracy: 1e-5)
        XCTAssertEqual(last["level"] as? Double, 0.95)

        let svg = FrontPlot.svg(r)
        XCTAssertEqual(svg.components(separatedBy: "stroke-dasharray").count - 1, 2, "the TT rise and its legend entry")
        XCTAssertTrue(svg.contains("step within noise"))
        XCTAssertTrue(svg.contains("fill=\"white\" stroke=\"#d62728\""), "TT (all-specific) is hollow")
    }

    // MARK: Matched budgets

    func testMatchedBudgetToleranceExcludesAPair15PercentApart() throws {
        let far = Comparisons(report([
            try candidate("SS", stored: 100, acc: [0.7, 0.7, 0.7, 0.7]),
            try candidate("TS", stored: 150, acc: [0.8, 0.81, 0.8, 0.81]),
            try candidate("ST", stored: 177, acc: [0.75, 0.76, 0.75, 0.76]),
        ]))
        XCTAssertTrue(far.matchedBudgets.isEmpty, "150 and 177 are 15% apart")
        XCTAssertEqual(far.unmatchedBudgets, 2)
        XCTAssertNil(far.matchedBudgetsNotMade)

        let near = Comparisons(report([
            try candidate("TS", stored: 150, acc: [0.8, 0.81, 0.8, 0.81]),
            try candidate("ST", stored: 156, acc: [0.75, 0.76, 0.75, 0.76]),
        ]))
        XCTAssertEqual(near.matchedBudgets.map(\.limit), [156], "4% apart: compared at the larger's size")
        XCTAssertEqual(near.unmatchedBudgets, 1, "at 150 no top-k mask fits")
        let exact = Comparisons(report([
            try candidate("TS", stored: 150, acc: [0.8, 0.81, 0.8, 0.81]),
            try candidate("ST", stored: 156, acc: [0.75, 0.76, 0.75, 0.76]),
        ]), tolerance: 0)
        XCTAssertTrue(exact.matchedBudgets.isEmpty, "tolerance 0: only exactly equal sizes")
    }

    /// Each family's best is chosen on the even-positioned seeds and scored on the odd ones.
    func testSplitHalfSelection() throws {
        // TSS wins on seeds 0 and 2, TTS on seeds 1 and 3 (and on the mean over all four).
        let r = report([
            try candidate("TSS", stored: 150, acc: [0.84, 0.70, 0.84, 0.70]),
            try candidate("TTS", stored: 152, acc: [0.80, 0.90, 0.80, 0.90]),
            try candidate("SST", stored: 151, acc: [0.78, 0.77, 0.79, 0.78]),
        ])
        let c = Comparisons(r)
        XCTAssertEqual(c.selectionSeeds, [0, 2])
        XCTAssertEqual(c.scoringSeeds, [1, 3])
        XCTAssertEqual(c.matchedBudgets.map(\.limit), [151], "at 152 the same pair again")
        let m = try XCTUnwrap(c.matchedBudgets.last)
        XCTAssertEqual(m.bottom?.mask.description, "TSS", "chosen on seeds 0 and 2, although TTS has the higher mean")
        XCTAssertEqual(m.top?.mask.description, "SST")
        let d = try XCTUnwrap(m.difference)
        XCTAssertEqual(d.seeds, 2, "scored on seeds 1 and 3 only")
        XCTAssertEqual(d.mean, 0.70 - 0.775, accuracy: 1e-9)
        XCTAssertEqual(d.verdict, .worse)
        let md = SummaryWriter.markdown(r, provenance: .init(command: "x", wallSeconds: 1, machine: "m", trainingSteps: 1))
        XCTAssertTrue(md.contains("Each family's best is chosen on seeds 0, 2 and the pair is scored on the other seeds, 1, 3"), md)
        XCTAssertTrue(md.contains("| 151 | `TSS` (150) 70.00 | `SST` (151) 77.50 | -7.50 ± 0.71 (0/2), 95% CI [-13.85, -1.15]: worse |"), md)
    }

    func testMatchedBudgetsNeedFourSeeds() throws {
        let r = report([
            try candidate("TS", stored: 150, acc: [0.8, 0.81, 0.8]),
            try candidate("ST", stored: 150, acc: [0.75, 0.76, 0.75]),
        ])
        let c = Comparisons(r)
        XCTAssertTrue(c.matchedBudgets.isEmpty)
        XCTAssertNotNil(c.matchedBudgetsNotMade)
        let md = SummaryWriter.markdown(r, provenance: .init(command: "x", wallSeconds: 1, machine: "m", trainingSteps: 1))
        XCTAssertTrue(md.contains("Comparison not made: 3 seed(s) shared by the bottom-k and top-k masks, fewer than 4."), md)
        XCTAssertEqual(c.exactMatches.count, 1, "exactly equal sizes are still tabled")
        XCTAssertTrue(md.contains("| 150 (150) | `TS` 80.33 | `ST` 75.33 | +5.00 ± 0.00 (3/3), 95% CI [+5.00, +5.00]: better |"), md)
    }
}
