import LayerSplitEngine
import LayerSplitSearch

/// The paired comparisons the papers' claims rest on, read off a finished study without configuration:
/// every candidate against all-shared and against independent models, bottom-specific against top-specific
/// at matched budgets, and masks that store exactly the same number of parameters.
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

    /// At a budget of `limit` stored parameters: the best bottom-k mask that fits against the best top-k mask
    /// that fits (`a` top, `b` bottom, so a positive difference favours the bottom).
    public struct MatchedBudget: Sendable {
        public var limit: Int
        public var top: Candidate?
        public var bottom: Candidate?
        public var difference: PairedDifference?
    }

    /// The all-shared candidate, if trained.
    public var allShared: Candidate?
    /// The all-specific candidate (independent models), if trained.
    public var independent: Candidate?
    /// One entry per budget at which some bottom-k or top-k candidate is the largest that fits: the stored
    /// counts of those candidates, ascending, with repeated pairs dropped.
    public var matchedBudgets: [MatchedBudget]
    /// Pairs of distinct masks with exactly equal stored parameters: `a` holds its non-shared units higher in
    /// the network than `b`, so a positive difference favours the lower placement.
    public var exactMatches: [Pair]
    /// Pairs of equal size not in `exactMatches` (there were more than `exactMatchLimit`).
    public var exactMatchesLeftOut: Int

    public init(_ report: FrontReport) {
        let done = report.candidates.filter(\.isDone)
        allShared = done.first { MaskFamily.of($0.mask) == .allShared }
        independent = done.first { MaskFamily.of($0.mask) == .allSpecific }

        let bottoms = done.filter { MaskFamily.of($0.mask) == .bottom }
        let tops = done.filter { MaskFamily.of($0.mask) == .top }
        var budgets: [MatchedBudget] = []
        for limit in Set((bottoms + tops).map(\.counts.stored)).sorted() {
            let b = report.best(under: .maxParams(limit)) { MaskFamily.of($0.mask) == .bottom }
            let t = report.best(under: .maxParams(limit)) { MaskFamily.of($0.mask) == .top }
            if let last = budgets.last, last.bottom?.mask == b?.mask, last.top?.mask == t?.mask { continue }
            budgets.append(MatchedBudget(limit: limit, top: t, bottom: b,
                                         difference: b.flatMap { b in t.map { PairedDifference($0, b) } }))
        }
        matchedBudgets = budgets

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

    /// `b − a` of each candidate against `reference` (nil for the reference itself or without one).
    public static func against(_ reference: Candidate?, _ c: Candidate) -> PairedDifference? {
        guard let r = reference, r.mask != c.mask, c.isDone else { return nil }
        return PairedDifference(r, c)
    }
}
