import Foundation
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

/// Parses `1.2M`, `350k`, `1200000`, `1.5e6` into a count; nil when it is not one, or when it is negative, not
/// finite or above `Budget.largestCount` (so that no text can overflow `Int`).
public func parseCount(_ text: String) -> Int? {
    guard let v = countValue(text), v <= Double(Budget.largestCount) else { return nil }
    return Int(v.rounded())
}

/// The number `text` writes (suffixes applied), or nil when it is not a finite number of 0 or more.
private func countValue(_ text: String) -> Double? {
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
    guard let v = Double(number), v >= 0, (v * scale).isFinite else { return nil }
    return v * scale
}

extension Budget {
    /// The largest `max_params`: 10^12 stored floats (4 TB), far beyond any model one machine trains. Larger
    /// values are refused rather than clamped: they are typing mistakes.
    public static let largestCount = 1_000_000_000_000
    /// The largest `max_specific_fraction`: 1000, that is `+100000%` (a model 1001 times its all-shared size).
    public static let largestFraction = 1000.0

    /// Why a budget was refused: one line, without the field or option (the caller names it).
    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// `max_params` from its text (`1.2M`, `350k`, `120000`, `1.5e6`): a count from 1 to `largestCount`.
    public static func maxParams(parsing text: String) throws -> Budget {
        guard let v = countValue(text) else {
            throw ParseError("expected a parameter count such as 1.2M, 350k or 120000; got '\(text)'")
        }
        guard v <= Double(largestCount) else {
            throw ParseError("\(text) parameters is beyond the largest budget LayerSplit accepts (10^12)")
        }
        let n = Int(v.rounded())
        guard n >= 1 else { throw ParseError("the parameter count must be at least 1; got '\(text)'") }
        return .maxParams(n)
    }

    /// `max_specific_fraction` from a number: finite, from 0 to `largestFraction`.
    public static func maxSpecificFraction(checking x: Double) throws -> Budget {
        guard x.isFinite else { throw ParseError("expected a finite fraction such as 0.25; got \(x)") }
        guard x >= 0 else { throw ParseError("must be 0 or more (0.25 allows 25% more parameters than all-shared); got \(x)") }
        guard x <= largestFraction else {
            throw ParseError("\(x) is beyond the largest fraction LayerSplit accepts (\(Int(largestFraction)), that is +\(Int(largestFraction * 100))%)")
        }
        return .maxSpecificFraction(x)
    }

    /// A budget as written on the command line: a count (`1.2M`, `350k`, `120000`) or a fraction over
    /// all-shared (`+25%`). Negative, NaN, infinite and absurdly large values are refused.
    public static func parse(_ text: String) throws -> Budget {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasPrefix("+") || t.hasSuffix("%") {
            guard t.hasPrefix("+"), t.hasSuffix("%"), t.count > 2, let p = Double(t.dropFirst().dropLast()),
                  !t.dropFirst().hasPrefix("+") else {
                throw ParseError("'\(text)': a fraction over all-shared is written +N%, e.g. +25%")
            }
            guard p.isFinite, p >= 0 else { throw ParseError("'\(text)': the percentage must be a finite number, 0 or more, e.g. +25%") }
            guard p <= largestFraction * 100 else {
                throw ParseError("'\(text)': beyond the largest fraction LayerSplit accepts (+\(Int(largestFraction * 100))%)")
            }
            return .maxSpecificFraction(p / 100)
        }
        guard countValue(t) != nil else {
            throw ParseError("'\(text)': give a parameter count (1.2M, 350k, 120000) or a fraction over all-shared (+25%)")
        }
        do { return try maxParams(parsing: t) } catch let e as ParseError { throw ParseError("'\(text)': \(e)") }
    }
}
