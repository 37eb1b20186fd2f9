import Foundation
import LayerSplitSearch

/// What a table of many paired comparisons can claim: at 95%, about 5% of the comparisons of masks that do
/// not differ still read `better` or `worse`. Holm–Bonferroni keeps the verdicts that hold with a
/// family-wise error of 5% over the whole table.
public enum MultipleComparisons {
    /// Holm's step-down procedure: for p-values sorted ascending, reject while p₍ᵢ₎ ≤ α / (k − i); returns,
    /// in the given order, whether each hypothesis of no difference is rejected.
    public static func holm(_ pValues: [Double], alpha: Double = 0.05) -> [Bool] {
        let order = pValues.indices.sorted { pValues[$0] < pValues[$1] }
        var rejected = [Bool](repeating: false, count: pValues.count)
        for (rank, i) in order.enumerated() {
            guard pValues[i] <= alpha / Double(pValues.count - rank) else { break }
            rejected[i] = true
        }
        return rejected
    }

    /// One line for under a table of `differences` (those with fewer than two seeds do not count), or nil
    /// when it holds fewer than two comparisons.
    public static func note(_ differences: [PairedDifference], level: Double = PairedDifference.level) -> String? {
        let tested = differences.filter { $0.pValue != nil }
        let k = tested.count
        guard k >= 2 else { return nil }
        let alpha = 1 - level
        let claims = tested.filter { [.better, .worse].contains($0.verdict(level: level)) }.count
        let holm = holm(tested.map { $0.pValue! }, alpha: alpha).filter { $0 }.count
        let bonferroni = 1 - alpha / Double(k)
        return "Multiple comparisons: \(k) paired comparisons at \(PairedDifference.percent(level)) here, so about "
            + String(format: "%.1f", alpha * Double(k))
            + " \"better\"/\"worse\" verdicts are expected by chance even if no mask differed; \(claims) of \(k) read better or worse, "
            + "\(holm) \(holm == 1 ? "survives" : "survive") Holm–Bonferroni (family-wise \(PairedDifference.percent(alpha))); the Bonferroni-adjusted level is "
            + String(format: "%.2f%%", bonferroni * 100) + ".\n"
    }
}
