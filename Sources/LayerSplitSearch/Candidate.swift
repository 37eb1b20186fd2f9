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

/// Student's t distribution for the paired intervals: its distribution function and quantiles, without a
/// statistics library.
///
/// `quantile` reads the usual two-sided 95% column (p = 0.975) from a table for 1–30 degrees of freedom,
/// inverts the exact distribution function by bisection up to 1,000 degrees of freedom, and uses the
/// Cornish–Fisher expansion about the normal quantile (Abramowitz & Stegun 26.7.5; error below 1e-8 there)
/// beyond. Known values: t(0.975, 1) = 12.706, t(0.975, 4) = 2.776, t(0.975, 9) = 2.262, t(0.975, 29) = 2.045.
public enum StudentT {
    /// t(0.975, df) for df = 1…30, to four decimals.
    static let table975: [Double] = [
        12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
    ]

    /// The t with `P(T ≤ t) = p`, for 0 < p < 1 and at least one degree of freedom.
    public static func quantile(_ p: Double, degreesOfFreedom df: Int) -> Double {
        precondition(p > 0 && p < 1 && df >= 1, "StudentT.quantile needs 0 < p < 1 and df ≥ 1")
        if p < 0.5 { return -quantile(1 - p, degreesOfFreedom: df) }
        if p == 0.5 { return 0 }
        if p == 0.975 && df <= table975.count { return table975[df - 1] }
        if df == 1 { return tan(Double.pi * (p - 0.5)) }
        if df > 1000 { return cornishFisher(p, degreesOfFreedom: df) }
        return invert(p) { cdf($0, degreesOfFreedom: df) }
    }

    /// The exact `P(T ≤ t)` for integer degrees of freedom (Abramowitz & Stegun 26.7.3–4: a finite
    /// sum in θ = atan(t/√df)).
    public static func cdf(_ t: Double, degreesOfFreedom df: Int) -> Double {
        precondition(df >= 1, "StudentT.cdf needs df ≥ 1")
        if t.isNaN { return .nan }
        if t < 0 { return 1 - cdf(-t, degreesOfFreedom: df) }
        if t.isInfinite { return 1 }
        let theta = atan(t / Double(df).squareRoot())
        let c2 = cos(theta) * cos(theta)
        let a: Double  // P(|T| < t)
        if df % 2 == 1 {
            var term = cos(theta), sum = 0.0
            if df > 1 {
                sum = term
                for k in stride(from: 3, to: df - 1, by: 2) { term *= c2 * Double(k - 1) / Double(k); sum += term }
            }
            a = 2 / Double.pi * (theta + sin(theta) * sum)
        } else {
            var term = 1.0, sum = 1.0
            for k in stride(from: 2, to: df - 1, by: 2) { term *= c2 * Double(k - 1) / Double(k); sum += term }
            a = sin(theta) * sum
        }
        return min(1, (1 + a) / 2)
    }

    /// The standard normal quantile, by bisection on `erfc`.
    static func normalQuantile(_ p: Double) -> Double {
        invert(p) { 0.5 * erfc(-$0 / 2.0.squareRoot()) }
    }

    static func cornishFisher(_ p: Double, degreesOfFreedom df: Int) -> Double {
        let z = normalQuantile(p), v = Double(df)
        let z2 = z * z
        let g1 = z * (z2 + 1) / 4
        let g2 = z * ((5 * z2 + 16) * z2 + 3) / 96
        let g3 = z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / 384
        let g4 = z * ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) / 92160
        return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v)
    }

    /// The x ≥ 0 with `f(x) = p` for an increasing `f` with f(0) = 1/2 ≤ p < 1.
    static func invert(_ p: Double, _ f: (Double) -> Double) -> Double {
        var lo = 0.0, hi = 1.0
        while f(hi) < p && hi < 1e12 { hi *= 2 }
        for _ in 0..<200 where hi - lo > 1e-12 * hi {
            let mid = (lo + hi) / 2
            if f(mid) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }
}

func mean(_ xs: [Double]) -> Double { xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count) }

func standardDeviation(_ xs: [Double]) -> Double {
    guard xs.count > 1 else { return 0 }
    let m = mean(xs)
    return (xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count - 1)).squareRoot()
}
