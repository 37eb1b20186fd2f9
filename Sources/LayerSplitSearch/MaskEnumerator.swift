import LayerSplitEngine

/// Every mask over per-unit allowed states, in a fixed order (unit 1 varies slowest, states in the order
/// given), optionally filtered by a budget.
///
/// - Complexity: O(Πᵤ |allowedᵤ|) masks, each checked in O(L).
public struct MaskEnumerator: Sequence {
    public let allowed: [[SharingState]]

    public init(allowed: [[SharingState]]) {
        precondition(allowed.allSatisfy { !$0.isEmpty }, "every unit needs at least one allowed state")
        self.allowed = allowed
    }

    /// The number of masks before any budget: the product of the allowed-state counts.
    public var totalCount: Int { allowed.reduce(1) { $0 * $1.count } }

    public func makeIterator() -> AnyIterator<SharingMask> {
        var digits = [Int](repeating: 0, count: allowed.count)
        var done = allowed.isEmpty
        return AnyIterator {
            guard !done else { return nil }
            let mask = SharingMask(zip(digits, allowed).map { $1[$0] })
            // Odometer increment, last unit fastest.
            var u = allowed.count - 1
            while u >= 0 {
                digits[u] += 1
                if digits[u] < allowed[u].count { break }
                digits[u] = 0
                u -= 1
            }
            if u < 0 { done = true }
            return mask
        }
    }

    /// The masks whose stored parameters fit `budget`.
    public func within(_ budget: Budget, parameters: ParameterModel) -> [SharingMask] {
        filter { budget.admits(parameters.counts(for: $0), allShared: parameters.allSharedCount) }
    }
}
