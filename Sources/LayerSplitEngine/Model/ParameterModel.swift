/// Parameter counts of every mask of one model, without building the model for each mask.
///
/// The search needs the stored size of thousands of masks to apply a budget before training anything; the
/// counts depend only on each unit's size, so they are measured once per unit and combined:
///     stored = Σ_S unit + Σ_T T · unit + Σ_A (adapter shared + T · adapter per task) + heads.
/// `MultiTaskModel.parameterCounts` gives the same numbers for a built model (tested over every mask of small
/// models).
public struct ParameterModel: Hashable, Sendable, Codable {
    /// The floats of one unit in the adapter state.
    public struct AdapterCount: Hashable, Sendable, Codable {
        /// Stored once: the shared unit without its BatchNorms.
        public var shared: Int
        /// Stored per task: the adapters and the BatchNorms.
        public var perTask: Int

        public init(shared: Int, perTask: Int) {
            self.shared = shared
            self.perTask = perTask
        }
    }

    /// Trainable floats of one copy of each unit.
    public let unitCounts: [Int]
    /// Each unit's counts in the adapter state; nil for a unit that cannot be one (`UnitSpec.acceptsAdapter`).
    public let adapterCounts: [AdapterCount?]
    /// Trainable floats of all heads together.
    public let headCount: Int
    public let taskCount: Int

    public init(spec: ModelSpec) throws {
        var rng = SplitMix64(seed: 0)
        let model = try MultiTaskModel(spec: spec, mask: .all(.shared, units: spec.units.count), rng: &rng)
        unitCounts = model.unitParameterCounts
        headCount = model.parameterCounts.heads
        taskCount = spec.taskCount
        // Each unit built once more in the adapter state, for one task: exact by construction.
        var counts: [AdapterCount?] = []
        let rows = TaskRows()
        for (u, unit) in spec.units.enumerated() {
            let input = u == 0 ? spec.inputShape : model.unitOutputShapes[u - 1]
            guard unit.acceptsAdapter else { counts.append(nil); continue }
            let a = try unit.makeAdapterUnit(from: try unit.build(input: input, rng: &rng), input: input, tasks: 1, rows: rows)
            counts.append(AdapterCount(shared: a.sharedParameterCount, perTask: a.taskParameterCount(0)))
        }
        adapterCounts = counts
    }

    /// The counts for `mask`, which must have one state per unit, and `A` only where a unit accepts an adapter.
    public func counts(for mask: SharingMask) -> ParameterCounts {
        precondition(mask.count == unitCounts.count, "mask \(mask) for \(unitCounts.count) units")
        var shared = 0, specific = 0
        for (u, state) in mask.states.enumerated() {
            switch state {
            case .shared: shared += unitCounts[u]
            case .specific: specific += taskCount * unitCounts[u]
            case .adapter:
                guard let a = adapterCounts[u] else {
                    preconditionFailure("mask \(mask): unit \(u + 1) cannot be an adapter unit (UnitSpec.acceptsAdapter)")
                }
                shared += a.shared
                specific += taskCount * a.perTask
            }
        }
        return ParameterCounts(shared: shared, specific: specific, heads: headCount)
    }

    /// The all-shared model's stored size: the reference for fractional budgets.
    public var allSharedCount: Int { unitCounts.reduce(0, +) + headCount }
}

extension MultiTaskModel {
    /// Trainable floats of one copy of each unit, input to output (for an adapter unit: its shared part and one
    /// task's adapters and BatchNorms).
    public var unitParameterCounts: [Int] {
        slots.map {
            switch $0 {
            case let .shared(s): s.parameterCount
            case let .specific(c): c[0].parameterCount
            case let .adapter(a): a.sharedParameterCount + a.taskParameterCount(0)
            }
        }
    }
}
