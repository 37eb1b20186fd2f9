/// Successive halving (Jamieson & Talwalkar 2016) over one round's masks: train every mask briefly, keep the
/// best `1/eta` by Pareto rank (non-dominated sorting of accuracy against stored parameters, then crowding),
/// continue the survivors from their checkpoints to `eta` times as many steps, until the full length.
///
/// The learning-rate schedule always spans the full length, so a survivor continued from its checkpoint is
/// the same model as one trained from scratch to that step: halving changes which masks get trained to the
/// end, never what a given trial computes.
public struct SuccessiveHalving: Hashable, Sendable, Codable {
    /// Steps of the first rung (at least).
    public var minSteps: Int
    /// Keep 1/eta of the candidates per rung, and multiply the steps by eta.
    public var eta: Int

    public init(minSteps: Int, eta: Int = 3) {
        self.minSteps = max(minSteps, 1)
        self.eta = max(eta, 2)
    }

    /// The steps of each rung, ending at `fullSteps`: fullSteps / etaʳ, ..., fullSteps / eta, fullSteps.
    public func rungs(fullSteps: Int) -> [Int] {
        var out = [fullSteps]
        while out[0] / eta >= minSteps { out.insert(out[0] / eta, at: 0) }
        return out
    }

    /// How many of `n` candidates survive a rung.
    public func survivors(of n: Int) -> Int { max(1, (n + eta - 1) / eta) }

    /// The survivors among `candidates`: lower Pareto rank first; within a rank, larger crowding distance first
    /// (NSGA-II, Deb et al. 2002), so that the ends of the front — the smallest and the most accurate masks —
    /// and its sparse stretches survive before points crowded together; then higher accuracy (so that when one
    /// survivor is left of the two ends it is the most accurate mask, not the smallest); then the mask.
    public func select(_ candidates: [Candidate]) -> [Candidate] {
        let params = candidates.map(\.counts.stored), acc = candidates.map(\.meanAccuracy)
        let ranks = ParetoFront.ranks(params: params, accuracy: acc)
        let crowding = ParetoFront.crowdingDistance(params: params, accuracy: acc, ranks: ranks)
        let order = candidates.indices.sorted {
            (ranks[$0], -crowding[$0], -acc[$0], candidates[$0].mask.description)
                < (ranks[$1], -crowding[$1], -acc[$1], candidates[$1].mask.description)
        }
        return order.prefix(survivors(of: candidates.count)).map { candidates[$0] }
    }
}
