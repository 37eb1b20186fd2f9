import LayerSplitEngine
import LayerSplitSearch

/// The paired comparisons the papers' claims rest on, read off a finished study without configuration:
/// every candidate against all-shared and against independent models, bottom-specific against top-specific
/// at matched budgets (sizes within ±5%, each family's best chosen on half the seeds and scored on the other
/// half), and masks that store exactly the same number of parameters.
///
/// Seed k of every candidate starts from the same pretrained weights, data order and new-parameter
/// initialisation, so per-seed differences cancel most of the seed noise; each comparison is `b − a` over the
/// seeds both sides have (`PairedDifference`).
public struct Comparisons: Sendable {
    /// Candidate `b` against candidate `a`.
    public struct Pair: Sendable {
        public var a: Candidate
        public var b: Candidate
        public var difference: PairedDifference
        init(_ a: Candidate, _ b: Candidate) {
            self.a = a
            self.b = b
            difference = PairedDifference(a, b)
        }
    }

    /// At a budget of `limit` stored parameters: the best bottom-k mask against the best top-k mask among
    /// those that fit and store at least `limit · (1 − tolerance)` (so the two sizes are within the tolerance
    /// of the larger), `a` top, `b` bottom, so a positive difference favours the bottom. Each family's best is
    /// chosen on the selection seeds and `difference` is scored on the other seeds only: choosing and scoring
    /// on the same seeds would favour the family with more masks to choose from.
    public struct MatchedBudget: Sendable {
        public var limit: Int
        public var top: Candidate?
        public var bottom: Candidate?
        /// Bottom − top over `Comparisons.scoringSeeds`.
        public var difference: PairedDifference?
    }

    /// The all-shared candidate, if trained.
    public var allShared: Candidate?
    /// The all-specific candidate (independent models), if trained.
    public var independent: Candidate?
    /// One entry per budget (the stored size of a bottom-k or top-k candidate) at which both families have a
    /// mask within the tolerance, ascending, with repeated pairs dropped.
    public var matchedBudgets: [MatchedBudget]
    /// How far apart a matched pair's stored sizes may be, relative to the larger (0.05: ±5%; 0: exactly equal).
    public var matchedTolerance: Double
    /// Budgets at which only one family has a mask within the tolerance (not compared).
    public var unmatchedBudgets: Int
    /// The seeds each family's best is chosen on (even positions among the seeds all bottom-k and top-k
    /// candidates share) and the seeds the chosen pair is scored on (odd positions).
    public var selectionSeeds: [UInt64], scoringSeeds: [UInt64]
    /// Why there are no matched budgets although both families were trained (too few seeds), else nil.
    public var matchedBudgetsNotMade: String?
    /// Pairs of distinct masks with exactly equal stored parameters: `a` holds its non-shared units higher in
    /// the network than `b`, so a positive difference favours the lower placement.
    public var exactMatches: [Pair]
    /// Pairs of equal size not in `exactMatches` (there were more than `exactMatchLimit`).
    public var exactMatchesLeftOut: Int

    /// Seeds needed to choose on half and score on the other half with at least two each.
    public static let minimumMatchedSeeds = 4

    public init(_ report: FrontReport, tolerance: Double = 0.05) {
        let done = report.candidates.filter(\.isDone)
        allShared = done.first { MaskFamily.of($0.mask) == .allShared }
        independent = done.first { MaskFamily.of($0.mask) == .allSpecific }

        let bottoms = done.filter { MaskFamily.of($0.mask) == .bottom }
        let tops = done.filter { MaskFamily.of($0.mask) == .top }
        matchedTolerance = tolerance
        var shared: Set<UInt64>? = nil
        for c in bottoms + tops { shared = shared.map { $0.intersection(c.seeds) } ?? Set(c.seeds) }
        let seeds = (shared ?? []).sorted()
        selectionSeeds = seeds.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        scoringSeeds = seeds.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        var budgets: [MatchedBudget] = []
        var unmatched = 0
        matchedBudgetsNotMade = nil
        if !bottoms.isEmpty, !tops.isEmpty, seeds.count < Self.minimumMatchedSeeds {
            matchedBudgetsNotMade = "not made: \(seeds.count) seed(s) shared by the bottom-k and top-k masks, fewer than \(Self.minimumMatchedSeeds). Each family's best would be chosen on the seeds it is scored on, which favours the family with more masks; choosing on half the seeds and scoring on the other half needs at least \(Self.minimumMatchedSeeds)."
        } else if !bottoms.isEmpty, !tops.isEmpty {
            let selection = Set(selectionSeeds), scoring = Set(scoringSeeds)
            func best(_ family: [Candidate], _ limit: Int) -> Candidate? {
                family.filter { $0.counts.stored <= limit && Double($0.counts.stored) >= Double(limit) * (1 - tolerance) }
                    .max { (Self.mean($0, over: selection), -$0.counts.stored, $1.mask.description)
                        < (Self.mean($1, over: selection), -$1.counts.stored, $0.mask.description) }
            }
            for limit in Set((bottoms + tops).map(\.counts.stored)).sorted() {
                guard let b = best(bottoms, limit), let t = best(tops, limit) else { unmatched += 1; continue }
                if let last = budgets.last, last.bottom?.mask == b.mask, last.top?.mask == t.mask { continue }
                budgets.append(MatchedBudget(limit: limit, top: t, bottom: b, difference: PairedDifference(t, b, seeds: scoring)))
            }
        }
        matchedBudgets = budgets
        unmatchedBudgets = unmatched

        // Every pair of equal size with distinct placements, unless there are more than `exactMatchLimit`
        // (identical units give O(n²) of them: 2,415 for an 8-unit MLP); then, per size, the pair with the
        // lowest and the highest placement, and a count of the pairs left out.
        let bySize = Dictionary(grouping: done, by: \.counts.stored)
        let groups = bySize.keys.sorted().map { size in bySize[size]!.sorted { Self.height($0.mask) > Self.height($1.mask) } }
        let total = groups.reduce(0) { $0 + Self.distinctPlacementPairs($1) }
        var pairs: [Pair] = []
        for group in groups {
            if total <= Self.exactMatchLimit {
                for i in group.indices {
                    for j in group.indices where j > i && Self.height(group[i].mask) != Self.height(group[j].mask) {
                        pairs.append(Pair(group[i], group[j]))
                    }
                }
            } else if let high = group.first, let low = group.last, Self.height(high.mask) != Self.height(low.mask) {
                pairs.append(Pair(high, low))
            }
        }
        exactMatches = Array(pairs.prefix(Self.exactMatchLimit))
        exactMatchesLeftOut = total - exactMatches.count
    }

    /// Pairs of equal-size masks tabled in full up to this many (the summary stays readable at any size).
    public static let exactMatchLimit = 64

    /// Pairs in `group` whose placements differ: all pairs less those of equal height.
    static func distinctPlacementPairs(_ group: [Candidate]) -> Int {
        let heights = Dictionary(grouping: group) { "\(height($0.mask))" }.values.map(\.count)
        return group.count * (group.count - 1) / 2 - heights.reduce(0) { $0 + $1 * ($1 - 1) / 2 }
    }

    /// How high in the network a mask keeps its non-shared units: their mean position, then their lowest
    /// (so that of two masks with the same mean, the one reaching further down counts as lower).
    static func height(_ mask: SharingMask) -> (mean: Double, lowest: Double) {
        let positions = mask.states.indices.filter { mask[$0] != .shared }.map(Double.init)
        guard let lowest = positions.first else { return (-1, -1) }
        return (positions.reduce(0, +) / Double(positions.count), lowest)
    }

    /// Mean accuracy of `c` over the trials whose seed is in `seeds`.
    static func mean(_ c: Candidate, over seeds: Set<UInt64>) -> Double {
        let xs = c.trials.filter { seeds.contains($0.key.seed) }.map(\.meanAccuracy)
        return xs.isEmpty ? -.infinity : xs.reduce(0, +) / Double(xs.count)
    }

    /// `b − a` of each candidate against `reference` (nil for the reference itself or without one).
    public static func against(_ reference: Candidate?, _ c: Candidate) -> PairedDifference? {
        guard let r = reference, r.mask != c.mask, c.isDone else { return nil }
        return PairedDifference(r, c)
    }
}
