import LayerSplitEngine

/// Greedy forward selection from all-shared.
///
/// Round 0 trains all-shared. Each later round trains every mask that switches one more shared unit of the
/// current mask to another allowed state (task-specific or adapter) and fits the budget; the current mask then
/// becomes the switch with the best accuracy gain per added parameter. It stops when no switch fits the budget
/// or no unit is left to switch. It keeps going when every gain is negative (the least loss per parameter
/// wins), because the path itself is part of the result: every evaluated candidate is recorded and reported.
///
/// - Complexity: at most L rounds of at most L·(states−1) masks, O(L²) candidates against 2ᴸ or 3ᴸ exhaustive.
public struct GreedyStrategy: SearchStrategy {
    public let domain: SearchDomain
    public init(domain: SearchDomain) { self.domain = domain }

    /// The mask the greedy path has reached after `evaluated` (all-shared before any round).
    public func current(after evaluated: [Candidate], round: Int) -> SharingMask {
        var mask = SharingMask.all(.shared, units: domain.units)
        let byMask = Dictionary(evaluated.map { ($0.mask, $0) }, uniquingKeysWith: { a, b in a.steps >= b.steps ? a : b })
        // Replay the path: each completed round moved from `mask` to its best neighbour.
        for _ in 1..<max(round, 1) {
            guard let base = byMask[mask] else { break }
            let scored = neighbours(of: mask).compactMap { n -> (SharingMask, Double)? in
                guard let c = byMask[n] else { return nil }
                let added = Double(c.counts.stored - base.counts.stored)
                return (n, (c.meanAccuracy - base.meanAccuracy) / max(added, 1))
            }
            guard let best = scored.max(by: { ($0.1, $1.0.description) < ($1.1, $0.0.description) }) else { break }
            mask = best.0
        }
        return mask
    }

    /// Masks one switch away from `mask` (a shared unit to another allowed state) that fit the budget.
    public func neighbours(of mask: SharingMask) -> [SharingMask] {
        var out: [SharingMask] = []
        for u in 0..<domain.units where mask[u] == .shared {
            for state in domain.allowed[u] where state != .shared {
                var n = mask
                n.states[u] = state
                if domain.admits(n) { out.append(n) }
            }
        }
        return out
    }

    public func nextRound(after evaluated: [Candidate], round: Int) -> [SharingMask]? {
        let start = SharingMask.all(.shared, units: domain.units)
        if round == 0 { return domain.admits(start) ? [start] : nil }
        let next = neighbours(of: current(after: evaluated, round: round))
        return next.isEmpty ? nil : next
    }
}
