import Foundation
import LayerSplitEngine
import LayerSplitSearch

/// The result of a study as reports show it: every candidate, the Pareto front, and the paired comparison of
/// each front point with its smaller neighbour on the front.
public struct FrontReport: Sendable {
    public var study: String
    public var taskNames: [String]
    /// Fully trained candidates, by stored parameters.
    public var candidates: [Candidate]
    /// Candidates stopped early (successive halving).
    public var pruned: [Candidate]
    /// Indices into `candidates` of the front, by stored parameters.
    public var front: [Int]
    /// For front point k ≥ 1: front[k] against front[k−1], paired over seeds.
    public var neighbourDifferences: [PairedDifference?]
    /// The all-shared model's stored size (for fractional budgets and for the plot).
    public var allSharedCount: Int

    public init(study: String, taskNames: [String], candidates: [Candidate], pruned: [Candidate] = [], allSharedCount: Int) {
        self.study = study
        self.taskNames = taskNames
        let cs = candidates.sorted { ($0.counts.stored, $0.mask.description) < ($1.counts.stored, $1.mask.description) }
        self.candidates = cs
        self.pruned = pruned
        self.allSharedCount = allSharedCount
        // Failed or diverged candidates are listed but never on the front.
        let eligible = cs.indices.filter { cs[$0].isDone }
        let f = ParetoFront.indices(params: eligible.map { cs[$0].counts.stored },
                                    accuracy: eligible.map { cs[$0].meanAccuracy })
        let fr = f.map { eligible[$0] }
        front = fr
        neighbourDifferences = front.indices.map { k in k == 0 ? nil : PairedDifference(cs[fr[k - 1]], cs[fr[k]]) }
    }

    /// The most accurate fully trained candidate that fits `budget` (fewer parameters wins a tie), among those
    /// `included` admits (all by default), or nil.
    public func best(under budget: Budget, among included: (Candidate) -> Bool = { _ in true }) -> Candidate? {
        candidates.filter { $0.isDone && budget.admits($0.counts, allShared: allSharedCount) && included($0) }
            .max { ($0.meanAccuracy, -$0.counts.stored) < ($1.meanAccuracy, -$1.counts.stored) }
    }

    /// The budgets summary.md lists: the all-shared size, +10%, +25%, +50%, +100%, and unlimited.
    public var standardBudgets: [Budget] {
        [0, 0.1, 0.25, 0.5, 1.0].map { Budget.maxSpecificFraction($0) } + [.unlimited]
    }
}
