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

    public init(_ a: Candidate, _ b: Candidate) {
        let byA = Dictionary(a.trials.map { ($0.key.seed, $0.meanAccuracy) }, uniquingKeysWith: { x, _ in x })
        var diffs: [Double] = []
        for t in b.trials { if let va = byA[t.key.seed] { diffs.append(t.meanAccuracy - va) } }
        mean = LayerSplitSearch.mean(diffs)
        std = standardDeviation(diffs)
        winsB = diffs.filter { $0 > 0 }.count
        winsA = diffs.filter { $0 < 0 }.count
        ties = diffs.filter { $0 == 0 }.count
        seeds = diffs.count
    }
}

func mean(_ xs: [Double]) -> Double { xs.isEmpty ? .nan : xs.reduce(0, +) / Double(xs.count) }

func standardDeviation(_ xs: [Double]) -> Double {
    guard xs.count > 1 else { return 0 }
    let m = mean(xs)
    return (xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count - 1)).squareRoot()
}
