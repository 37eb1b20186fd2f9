import Foundation
import LayerSplitEngine

/// A mask with its trials over the study's seeds, at one training length: what reports and the front show.
public struct Candidate: Hashable, Sendable {
    public var mask: SharingMask
    public var steps: Int
    public var counts: ParameterCounts
    /// Trials by seed, ordered by seed.
    public var trials: [TrialResult]

    public init(mask: SharingMask, steps: Int, counts: ParameterCounts, trials: [TrialResult]) {
        self.mask = mask
        self.steps = steps
        self.counts = counts
        self.trials = trials.sorted { $0.key.seed < $1.key.seed }
    }

    public var family: String { MaskFamily.label(mask) }
    public var seeds: [UInt64] { trials.map(\.key.seed) }

    /// Whether every trial finished normally.
    public var isDone: Bool { trials.allSatisfy { $0.state == .done } }

    /// The worst state among the trials (`failed` over `diverged` over `done`).
    public var state: TrialState {
        if trials.contains(where: { $0.state == .failed }) { return .failed }
        if trials.contains(where: { $0.state == .diverged }) { return .diverged }
        return .done
    }

    /// Mean over seeds of the mean over tasks.
    public var meanAccuracy: Double { mean(trials.map(\.meanAccuracy)) }

    /// Sample standard deviation over seeds of the mean accuracy (0 for one seed).
    public var stdAccuracy: Double { standardDeviation(trials.map(\.meanAccuracy)) }

    /// Mean over seeds, per task.
    public var taskAccuracy: [Double] {
        guard let tasks = trials.first?.accuracy.count else { return [] }
        return (0..<tasks).map { t in mean(trials.map { $0.accuracy.count > t ? $0.accuracy[t] : 0 }) }
    }

    public var seconds: Double { trials.reduce(0) { $0 + $1.seconds } }

    /// Groups trials into candidates by (mask, steps).
    public static func group(_ results: some Sequence<TrialResult>) -> [Candidate] {
        var groups: [TrialKey: [TrialResult]] = [:]
        for r in results {
            groups[TrialKey(mask: r.key.mask, seed: 0, steps: r.key.steps), default: []].append(r)
        }
        return groups.map { key, trials in
            Candidate(mask: key.mask, steps: key.steps, counts: trials[0].counts, trials: trials)
        }.sorted { ($0.counts.stored, $0.mask.description, $0.steps) < ($1.counts.stored, $1.mask.description, $1.steps) }
    }
}

/// A paired comparison of two candidates over the seeds they share: seed k of both saw the same pretrained
/// weights, data order and new-parameter initialisation, so the per-seed differences remove most seed noise.
public struct PairedDifference: Hashable, Sendable, Codable {
    /// Mean over shared seeds of (b − a) mean accuracy.
    public var mean: Double
    /// Sample standard deviation of the per-seed differences.
    public var std: Double
    /// Seeds where b beats a, where a beats b, and ties.
    public var winsB: Int, winsA: Int, ties: Int
    public var seeds: Int

    /// `b − a` over the seeds both have, or over those of them in `seeds` when given (to score a choice on
    /// seeds other than those it was made on).
    public init(_ a: Candidate, _ b: Candidate, seeds: Set<UInt64>? = nil) {
        let byA = Dictionary(a.trials.map { ($0.key.seed, $0.meanAccuracy) }, uniquingKeysWith: { x, _ in x })
        var diffs: [Double] = []
        for t in b.trials where seeds?.contains(t.key.seed) ?? true {
            if let va = byA[t.key.seed] { diffs.append(t.meanAccuracy - va) }
        }
        self.init(differences: diffs)
    }

    /// From per-seed differences `b − a` directly.
    public init(differences diffs: [Double]) {
        mean = LayerSplitSearch.mean(diffs)
        std = standardDeviation(diffs)
        winsB = diffs.filter { $0 > 0 }.count
        winsA = diffs.filter { $0 < 0 }.count
        ties = diffs.filter { $0 == 0 }.count
        seeds = diffs.count
    }
}

/// The statistics every report uses for a paired difference: one definition of its interval, its verdict and
/// how many seeds would settle it.
extension PairedDifference {
    /// The confidence level reports use unless told otherwise.
    public static let level = 0.95

    /// What the interval says about `b − a`: `better` (b is more accurate: the interval lies above 0), `worse`
    /// (below 0), `indistinguishable` (it contains 0); with one shared seed there is no interval, and with none
    /// no difference at all. Only `better` and `worse` are claims.
    public enum Verdict: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
        case better, indistinguishable, worse
        case oneSeed = "one-seed"
        case noSeeds = "no-seeds"

        public var description: String {
            switch self {
            case .better, .indistinguishable, .worse: rawValue
            case .oneSeed: "one seed: no interval"
            case .noSeeds: "no shared seeds"
            }
        }
    }

    /// The Student t confidence interval of the mean difference over the paired seeds:
    /// `mean ± t(1 − (1 − level)/2, n − 1) · std / √n`, or nil with fewer than two seeds.
    ///
    /// For example, five seeds with differences of mean +0.0033 and std 0.0055 give
    /// +0.0033 ± 2.776 · 0.0055 / √5 = [−0.0035, +0.0101]: the interval contains 0.
    public func interval(level: Double = Self.level) -> ClosedRange<Double>? {
        guard seeds >= 2, mean.isFinite, std.isFinite else { return nil }
        let half = StudentT.quantile(1 - (1 - level) / 2, degreesOfFreedom: seeds - 1) * std / Double(seeds).squareRoot()
        return (mean - half)...(mean + half)
    }

    /// `better` or `worse` only when the interval at `level` excludes 0.
    public func verdict(level: Double = Self.level) -> Verdict {
        if seeds == 0 { return .noSeeds }
        guard let ci = interval(level: level) else { return .oneSeed }
        if ci.lowerBound > 0 { return .better }
        if ci.upperBound < 0 { return .worse }
        return .indistinguishable
    }

    /// The verdict at the reports' level (95%).
    public var verdict: Verdict { verdict() }

    /// Two-sided p-value of the paired t test of "no difference" (for Holm–Bonferroni), or nil with fewer
    /// than two seeds. Zero std with a non-zero mean gives 0; zero std and zero mean give 1.
    public var pValue: Double? {
        guard seeds >= 2, mean.isFinite, std.isFinite else { return nil }
        guard std > 0 else { return mean == 0 ? 1 : 0 }
        let t = abs(mean) / (std / Double(seeds).squareRoot())
        return min(1, 2 * (1 - StudentT.cdf(t, degreesOfFreedom: seeds - 1)))
    }

    /// How many paired seeds would make the interval exclude 0 if the mean and std stayed as measured: the
    /// smallest n ≥ 2 with `t(n − 1) · std / √n < |mean|`, about `(t · std / mean)²`.
    public enum SeedsToSeparate: Hashable, Sendable, CustomStringConvertible {
        case seeds(Int)
        /// More than the limit asked about.
        case moreThan(Int)
        /// The mean difference is 0: no number of seeds separates them.
        case zeroMean
        /// One seed: no std to estimate from.
        case oneSeed

        public var description: String {
            switch self {
            case .seeds(let n): "about \(n)"
            case .moreThan(let n): "more than \(n)"
            case .zeroMean: "cannot: mean difference 0"
            case .oneSeed: "one seed: no std to estimate from"
            }
        }
    }

    public func seedsToSeparate(level: Double = Self.level, limit: Int = 1000) -> SeedsToSeparate {
        guard seeds >= 2, mean.isFinite, std.isFinite else { return .oneSeed }
        guard mean != 0 else { return .zeroMean }
        let p = 1 - (1 - level) / 2
        func separates(_ n: Int) -> Bool {
            StudentT.quantile(p, degreesOfFreedom: n - 1) * std / Double(n).squareRoot() < abs(mean)
        }
        guard separates(limit) else { return .moreThan(limit) }
        // t(n − 1)/√n falls with n, so the first n that separates is found by bisection.
        var lo = 1, hi = limit  // separates(hi); not separates(lo) (one seed never does)
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if separates(mid) { hi = mid } else { lo = mid }
        }
        return .seeds(hi)
    }
}

func mean(_ xs: [Double]) -> Double { xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count) }

func standardDeviation(_ xs: [Double]) -> Double {
    guard xs.count > 1 else { return 0 }
    let m = mean(xs)
    return (xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count - 1)).squareRoot()
}
