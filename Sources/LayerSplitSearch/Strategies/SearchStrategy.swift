import LayerSplitEngine

/// Chooses which masks to train, round by round (Optuna's sampler, batched).
///
/// A study asks for a round, trains every mask of it with every seed, and passes back every candidate
/// evaluated so far; the strategy answers with the next round, or nil when it is finished. A strategy without
/// rounds (exhaustive, families, random) answers once. Strategies are deterministic functions of their
/// inputs and seed, so a resumed or sharded study plans the same rounds.
public protocol SearchStrategy: Sendable {
    /// The masks of the next round, or nil when the search is over.
    func nextRound(after evaluated: [Candidate], round: Int) -> [SharingMask]?
}

/// What every strategy needs to know about the search space.
public struct SearchDomain: Sendable {
    public var allowed: [[SharingState]]
    public var budget: Budget
    public var parameters: ParameterModel

    public init(allowed: [[SharingState]], budget: Budget, parameters: ParameterModel) {
        self.allowed = allowed
        self.budget = budget
        self.parameters = parameters
    }

    public var units: Int { allowed.count }

    public func admits(_ mask: SharingMask) -> Bool {
        zip(mask.states, allowed).allSatisfy { $1.contains($0) }
            && budget.admits(parameters.counts(for: mask), allShared: parameters.allSharedCount)
    }

    /// Every allowed mask within the budget, in enumeration order.
    public var allMasks: [SharingMask] { MaskEnumerator(allowed: allowed).within(budget, parameters: parameters) }
}

/// Every allowed mask within the budget.
public struct ExhaustiveStrategy: SearchStrategy {
    public let domain: SearchDomain
    public init(domain: SearchDomain) { self.domain = domain }

    public func nextRound(after evaluated: [Candidate], round: Int) -> [SharingMask]? {
        round == 0 ? domain.allMasks : nil
    }
}

/// all-shared, bottom-k, top-k, all-specific (and adapters everywhere when allowed), within the budget.
public struct FamiliesStrategy: SearchStrategy {
    public let domain: SearchDomain
    public init(domain: SearchDomain) { self.domain = domain }

    public func nextRound(after evaluated: [Candidate], round: Int) -> [SharingMask]? {
        guard round == 0 else { return nil }
        let adapters = domain.allowed.allSatisfy { $0.contains(.adapter) }
        return MaskFamily.standardMasks(units: domain.units, adapters: adapters).filter(domain.admits)
    }
}

/// `count` distinct masks drawn uniformly from those within the budget (all of them if there are fewer).
public struct RandomStrategy: SearchStrategy {
    public let domain: SearchDomain
    public let count: Int
    public let seed: UInt64

    public init(domain: SearchDomain, count: Int, seed: UInt64) {
        self.domain = domain
        self.count = count
        self.seed = seed
    }

    public func nextRound(after evaluated: [Candidate], round: Int) -> [SharingMask]? {
        guard round == 0 else { return nil }
        var rng = SplitMix64(seed: seed).derived(0x5A3D)
        let total = MaskEnumerator(allowed: domain.allowed).totalCount
        if total <= 1 << 20 {
            // Small spaces: sample without replacement from the enumerated list (exact and uniform).
            var masks = domain.allMasks
            masks.shuffle(using: &rng)
            return Array(masks.prefix(count))
        }
        // Large spaces: rejection sampling, bounded so that an over-tight budget cannot loop for ever.
        var seen = Set<SharingMask>(), out: [SharingMask] = []
        var attempts = 0
        while out.count < count && attempts < count * 10_000 {
            attempts += 1
            let mask = SharingMask(domain.allowed.map { $0[Int(rng.next() % UInt64($0.count))] })
            if domain.admits(mask) && seen.insert(mask).inserted { out.append(mask) }
        }
        return out
    }
}

/// Exactly the masks a study lists (for example the comparisons of a paper), in that order.
public struct ListStrategy: SearchStrategy {
    public let masks: [SharingMask]
    public init(masks: [SharingMask]) { self.masks = masks }

    public func nextRound(after evaluated: [Candidate], round: Int) -> [SharingMask]? {
        round == 0 ? masks : nil
    }
}
