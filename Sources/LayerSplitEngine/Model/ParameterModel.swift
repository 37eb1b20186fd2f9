/// Parameter counts of every mask of one model, without building the model for each mask.
///
/// The search needs the stored size of thousands of masks to apply a budget before training anything; the
/// counts depend only on each unit's size, so they are measured once on the all-shared model and combined:
/// stored = Σ shared units + T · Σ specific units + heads. `MultiTaskModel.parameterCounts` gives the same
/// numbers for a built model (tested).
public struct ParameterModel: Hashable, Sendable, Codable {
    /// Trainable floats of one copy of each unit.
    public let unitCounts: [Int]
    /// Trainable floats of all heads together.
    public let headCount: Int
    public let taskCount: Int

    public init(spec: ModelSpec) throws {
        var rng = SplitMix64(seed: 0)
        let model = try MultiTaskModel(spec: spec, mask: .all(.shared, units: spec.units.count), rng: &rng)
        unitCounts = model.unitParameterCounts
        headCount = model.parameterCounts.heads
        taskCount = spec.taskCount
    }

    /// The counts for `mask`, which must have one state per unit.
    public func counts(for mask: SharingMask) -> ParameterCounts {
        precondition(mask.count == unitCounts.count, "mask \(mask) for \(unitCounts.count) units")
        var shared = 0, specific = 0
        for (u, state) in mask.states.enumerated() {
            switch state {
            case .shared: shared += unitCounts[u]
            case .specific: specific += taskCount * unitCounts[u]
            case .adapter: preconditionFailure("adapter units are not supported by this engine version")
            }
        }
        return ParameterCounts(shared: shared, specific: specific, heads: headCount)
    }

    /// The all-shared model's stored size: the reference for fractional budgets.
    public var allSharedCount: Int { unitCounts.reduce(0, +) + headCount }
}

extension MultiTaskModel {
    /// Trainable floats of one copy of each unit, input to output.
    public var unitParameterCounts: [Int] { slots.map { $0.copies[0].parameterCount } }
}
