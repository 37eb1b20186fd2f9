import Foundation
import LayerSplitEngine
import LayerSplitSearch

/// The answer to "which mask for this budget?": the most accurate mask that fits, and the cheapest mask that
/// fits and is statistically indistinguishable from it (its paired interval against the most accurate one
/// contains 0). When the two differ, the cheaper one is as good an answer as the seeds can tell, and
/// `seedsToSeparate` says how many seeds would be needed to tell them apart if the measured mean and std held.
public struct BudgetAnswer: Sendable {
    public var budget: Budget
    /// The most accurate fully trained candidate that fits (`FrontReport.best(under:)`).
    public var best: Candidate
    /// The cheapest candidate that fits whose paired interval against `best` contains 0; `best` itself when
    /// no cheaper one is indistinguishable (or with fewer than two seeds, when nothing can be).
    public var cheapest: Candidate
    /// `cheapest − best`, paired; nil when `cheapest` is `best`.
    public var difference: PairedDifference?
    public var level: Double
    /// How many fully trained candidates that fit store fewer parameters than `best`.
    public var cheaperThatFit: Int
    /// When `cheapest` is `best` although cheaper masks fit: the most accurate of them and its paired
    /// difference `runnerUp − best`, which says why it was not chosen (usually `worse`).
    public var runnerUp: Candidate?
    public var runnerUpDifference: PairedDifference?

    /// Seeds that would separate `cheapest` from `best`, or nil when they are the same mask.
    public var seedsToSeparate: PairedDifference.SeedsToSeparate? { difference?.seedsToSeparate(level: level) }

    /// Whether `best` has fewer than two seeds, so no interval says which cheaper mask matches it.
    public var oneSeed: Bool { best.trials.count < 2 }

    /// Why `cheapest` is `best`: "it is the cheapest mask that fits" or "none of the cheaper masks that fit (3)
    /// is indistinguishable from it at 95%".
    public var whyItself: String {
        cheaperThatFit == 0 ? "it is the cheapest mask that fits"
            : "none of the cheaper masks that fit (\(cheaperThatFit)) is indistinguishable from it at \(PairedDifference.percent(level))"
    }

    /// The command line's answer: the first line is the most accurate mask as `layersplit best` always
    /// printed it (mask first); the rest give the cheapest indistinguishable mask and the statistics.
    public var lines: [String] {
        func describe(_ c: Candidate) -> String {
            "\(c.mask)  \(c.family)  \(formatCount(c.counts.stored)) params (\(c.counts.stored))  mean accuracy \(String(format: "%.4f ± %.4f", c.meanAccuracy, c.stdAccuracy)) over \(c.trials.count) seed(s)"
        }
        var out = [describe(best)]
        let pct = PairedDifference.percent(level)
        if oneSeed {
            out.append("cheapest indistinguishable mask: cannot tell (one seed: no interval)")
        } else if let d = difference {
            out.append("cheapest mask indistinguishable from it (\(pct) paired interval contains 0): " + describe(cheapest))
            out.append("  \(cheapest.mask) − \(best.mask) (points): " + d.cellText(level: level))
            out.append("  seeds that would separate them, from the paired std: \(d.seedsToSeparate(level: level))")
        } else {
            out.append("cheapest mask indistinguishable from it: \(best.mask) itself (" + whyItself + ")")
            if let r = runnerUp, let d = runnerUpDifference {
                out.append("  the most accurate cheaper mask, " + describe(r))
                out.append("  \(r.mask) − \(best.mask) (points): " + d.cellText(level: level))
            }
        }
        return out
    }
}

extension FrontReport {
    /// The most accurate candidate that fits `budget` and the cheapest one indistinguishable from it at
    /// `level`, or nil when none fits.
    public func answer(under budget: Budget, level: Double = PairedDifference.level) -> BudgetAnswer? {
        guard let best = best(under: budget) else { return nil }
        let cheaper = candidates.filter {
            $0.isDone && $0.counts.stored < best.counts.stored && budget.admits($0.counts, allShared: allSharedCount)
        }
        var answer = BudgetAnswer(budget: budget, best: best, cheapest: best, difference: nil, level: level,
                                  cheaperThatFit: cheaper.count, runnerUp: nil, runnerUpDifference: nil)
        guard !answer.oneSeed else { return answer }
        let matches = cheaper.map { ($0, PairedDifference(best, $0)) }.filter { $0.1.verdict(level: level) == .indistinguishable }
        if let (c, d) = matches.min(by: { ($0.0.counts.stored, -$0.0.meanAccuracy) < ($1.0.counts.stored, -$1.0.meanAccuracy) }) {
            answer.cheapest = c
            answer.difference = d
        } else if let r = cheaper.max(by: { ($0.meanAccuracy, -$0.counts.stored) < ($1.meanAccuracy, -$1.counts.stored) }) {
            answer.runnerUp = r
            answer.runnerUpDifference = PairedDifference(best, r)
        }
        return answer
    }
}
