import LayerSplitEngine

/// A limit on stored parameters.
///
/// `maxParams` bounds the stored count outright; `maxSpecificFraction` bounds the extra parameters over the
/// all-shared model, as a fraction of the all-shared model's size (0.25 allows 25% more than all-shared).
public enum Budget: Hashable, Sendable, Codable, CustomStringConvertible {
    case unlimited
    case maxParams(Int)
    case maxSpecificFraction(Double)

    /// Whether a mask with `counts` fits, for a model whose all-shared size is `allShared`.
    public func admits(_ counts: ParameterCounts, allShared: Int) -> Bool {
        switch self {
        case .unlimited: true
        case let .maxParams(n): counts.stored <= n
        case let .maxSpecificFraction(f): Double(counts.stored - allShared) <= f * Double(allShared) + 1e-9
        }
    }

    /// The largest stored count allowed, for a model whose all-shared size is `allShared`.
    public func limit(allShared: Int) -> Int? {
        switch self {
        case .unlimited: nil
        case let .maxParams(n): n
        case let .maxSpecificFraction(f): allShared + Int((f * Double(allShared)).rounded(.down))
        }
    }

    public var description: String {
        switch self {
        case .unlimited: "no budget"
        case let .maxParams(n): "max_params \(formatCount(n))"
        case let .maxSpecificFraction(f): "max_specific_fraction \(f)"
        }
    }
}

/// `1.2M`, `350k`, `812`: parameter counts as people write them.
public func formatCount(_ n: Int) -> String {
    let v = Double(n)
    if n >= 1_000_000 { return trimmed(v / 1e6) + "M" }
    if n >= 10_000 { return trimmed(v / 1e3) + "k" }
    return String(n)
}

private func trimmed(_ v: Double) -> String {
    var s = String(format: "%.3g", v)
    if s.contains("e") { s = String(format: "%.0f", v) }
    return s
}

/// Parses `1.2M`, `350k`, `1200000`, `1.5e6` into a count; nil when it is not one.
public func parseCount(_ text: String) -> Int? {
    let t = text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "")
    guard let last = t.last else { return nil }
    let scale: Double
    var number = t
    switch last {
    case "k", "K": scale = 1e3; number.removeLast()
    case "m", "M": scale = 1e6; number.removeLast()
    case "g", "G", "b", "B": scale = 1e9; number.removeLast()
    default: scale = 1
    }
    guard let v = Double(number), v >= 0, v.isFinite else { return nil }
    return Int((v * scale).rounded())
}

import Foundation
