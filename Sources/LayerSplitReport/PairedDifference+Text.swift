import Foundation
import LayerSplitSearch

/// How every report writes a paired difference, in accuracy points: one format for the summary, the plot's
/// tooltips and the command line.
extension PairedDifference {
    /// "+0.33 ± 0.55 (3/5)": mean ± std over the paired seeds, in points, and the seeds `b` wins.
    public var pointsText: String {
        String(format: "%+.2f ± %.2f (%d/%d)", mean * 100, std * 100, winsB, seeds)
    }

    /// "[-0.35, +1.01]": the confidence interval in points, or the verdict's reason when there is none.
    public func intervalText(level: Double = Self.level) -> String {
        guard let ci = interval(level: level) else { return verdict(level: level).description }
        return String(format: "[%+.2f, %+.2f]", ci.lowerBound * 100, ci.upperBound * 100)
    }

    /// One table cell: "+0.33 ± 0.55 (3/5), 95% CI [-0.35, +1.01]: indistinguishable".
    public func cellText(level: Double = Self.level) -> String {
        guard seeds > 0 else { return verdict(level: level).description }
        guard interval(level: level) != nil else { return pointsText + ": " + verdict(level: level).description }
        return pointsText + ", \(Self.percent(level)) CI \(intervalText(level: level)): \(verdict(level: level))"
    }

    /// "95%", "99.7%".
    static func percent(_ level: Double) -> String {
        let p = level * 100
        return p == p.rounded() ? "\(Int(p))%" : String(format: "%.3g%%", p)
    }
}
