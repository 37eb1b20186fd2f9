import Foundation
import LayerSplitSearch

/// `summary.md`: how the result was made, the front as a table, and the best mask for a few budgets.
public enum SummaryWriter {
    public struct Provenance: Sendable {
        public var command: String
        public var wallSeconds: Double
        public var machine: String
        public var trainingSteps: Int
        public var notes: [String]

        public init(command: String, wallSeconds: Double, machine: String, trainingSteps: Int, notes: [String] = []) {
            self.command = command
            self.wallSeconds = wallSeconds
            self.machine = machine
            self.trainingSteps = trainingSteps
            self.notes = notes
        }
    }

    public static func markdown(_ r: FrontReport, provenance: Provenance) -> String {
        var s = "# \(r.study)\n\n"
        s += "- command: `\(provenance.command)`\n"
        s += "- wall time: \(String(format: "%.1f", provenance.wallSeconds)) s; training steps: \(provenance.trainingSteps)\n"
        s += "- machine: \(provenance.machine)\n"
        s += "- candidates: \(r.candidates.count) trained to full length" + (r.pruned.isEmpty ? "" : ", \(r.pruned.count) stopped early by successive halving") + "\n"
        s += "- tasks: \(r.taskNames.joined(separator: ", ")); mask letters, input to output: S shared, T task-specific, A adapter\n"
        for n in provenance.notes { s += "- \(n)\n" }
        s += "\n## Pareto front (mean accuracy against stored parameters)\n\n"
        s += "| mask | family | stored params | mean acc (%) | std | " + r.taskNames.map { "\($0) (%)" }.joined(separator: " | ") + " | vs previous (paired) |\n"
        s += "|" + String(repeating: "---|", count: 6 + r.taskNames.count) + "\n"
        for (k, i) in r.front.enumerated() {
            let c = r.candidates[i]
            let paired = r.neighbourDifferences[k].map {
                String(format: "%+.2f ± %.2f, wins %d/%d", $0.mean * 100, $0.std * 100, $0.winsB, $0.seeds)
            } ?? "—"
            s += "| `\(c.mask)` | \(c.family) | \(formatCount(c.counts.stored)) (\(c.counts.stored)) | "
                + String(format: "%.2f | %.2f", c.meanAccuracy * 100, c.stdAccuracy * 100) + " | "
                + c.taskAccuracy.map { String(format: "%.2f", $0 * 100) }.joined(separator: " | ") + " | \(paired) |\n"
        }
        s += "\n## Best mask for a budget\n\n| budget | limit (params) | best mask | stored params | mean acc (%) |\n|---|---|---|---|---|\n"
        for b in r.standardBudgets {
            let limit = b.limit(allShared: r.allSharedCount).map(formatCount) ?? "—"
            if let c = r.best(under: b) {
                s += "| \(b) | \(limit) | `\(c.mask)` | \(formatCount(c.counts.stored)) | " + String(format: "%.2f ± %.2f", c.meanAccuracy * 100, c.stdAccuracy * 100) + " |\n"
            } else {
                s += "| \(b) | \(limit) | none fits | | |\n"
            }
        }
        s += comparisonSections(r)
        s += "\nPaired differences: seed k trains every mask from the same pretrained weights, data order and new-parameter initialisation; \"vs previous\" is this front point minus the previous (smaller) one, in points, with the std over seeds and the seeds it wins. The other tables give each difference the same way, the first-named side minus the second, \"(k/n)\" being the seeds the first-named side wins.\n"
        return s
    }

    /// Rows of the every-candidate table shown before the rest is left to candidates.csv.
    static let candidateRows = 64

    /// Every candidate when they fit the table; otherwise the front, then the most accurate, up to
    /// `candidateRows`, in the report's order (by stored parameters).
    static func tabledCandidates(_ r: FrontReport) -> [Candidate] {
        guard r.candidates.count > candidateRows else { return r.candidates }
        var chosen = Set(r.front.prefix(candidateRows))
        let byAccuracy = r.candidates.indices.filter { r.candidates[$0].isDone }
            .sorted { r.candidates[$0].meanAccuracy > r.candidates[$1].meanAccuracy }
        for i in byAccuracy where chosen.count < candidateRows { chosen.insert(i) }
        return chosen.sorted().map { r.candidates[$0] }
    }

    /// The every-candidate table and the comparisons of `Comparisons`.
    static func comparisonSections(_ r: FrontReport) -> String {
        let c = Comparisons(r)
        func paired(_ d: PairedDifference?) -> String {
            guard let d, d.seeds > 0 else { return "—" }
            return String(format: "%+.2f ± %.2f (%d/%d)", d.mean * 100, d.std * 100, d.winsB, d.seeds)
        }
        func acc(_ x: Candidate) -> String { String(format: "%.2f", x.meanAccuracy * 100) }
        var s = "\n## Every candidate\n\n"
        s += "Against all-shared (`\(c.allShared?.mask.description ?? "not trained")`) and independent models (`\(c.independent?.mask.description ?? "not trained")`), paired: candidate − reference.\n\n"
        s += "| mask | family | stored params | × all-shared | mean acc (%) | std | vs all-shared | vs independent |\n|---|---|---|---|---|---|---|---|\n"
        for x in tabledCandidates(r) {
            let ratio = r.allSharedCount > 0 ? String(format: "%.2f", Double(x.counts.stored) / Double(r.allSharedCount)) : "—"
            s += "| `\(x.mask)` | \(x.family) | \(formatCount(x.counts.stored)) | \(ratio) | "
                + (x.isDone ? "\(acc(x)) | " + String(format: "%.2f", x.stdAccuracy * 100) : "\(x.state.rawValue) | —")
                + " | \(paired(Comparisons.against(c.allShared, x))) | \(paired(Comparisons.against(c.independent, x))) |\n"
        }
        if r.candidates.count > candidateRows {
            s += "\nThe front and the most accurate candidates, \(candidateRows) of \(r.candidates.count); every candidate is in candidates.csv.\n"
        }

        if !c.matchedBudgets.isEmpty {
            s += "\n## Bottom-specific against top-specific at matched budgets\n\n"
            s += "At each budget (the stored size of a bottom-k or top-k candidate): the most accurate bottom-k and top-k masks that fit, and bottom − top, paired.\n\n"
            s += "| budget (params) | best bottom-k | best top-k | bottom − top |\n|---|---|---|---|\n"
            for m in c.matchedBudgets {
                let b = m.bottom.map { "`\($0.mask)` \(acc($0))" } ?? "none fits"
                let t = m.top.map { "`\($0.mask)` \(acc($0))" } ?? "none fits"
                s += "| \(formatCount(m.limit)) | \(b) | \(t) | \(paired(m.difference)) |\n"
            }
        }

        s += "\n## Masks with exactly equal stored parameters\n\n"
        if c.exactMatches.isEmpty {
            s += "None: no two trained masks store the same number of parameters (the units differ in size).\n"
        } else {
            s += "The same stored parameters, task-specific units placed lower or higher: lower − higher, paired.\n\n"
            s += "| stored params | lower | higher | lower − higher |\n|---|---|---|---|\n"
            for p in c.exactMatches {
                s += "| \(formatCount(p.a.counts.stored)) (\(p.a.counts.stored)) | `\(p.b.mask)` \(acc(p.b)) | `\(p.a.mask)` \(acc(p.a)) | \(paired(p.difference)) |\n"
            }
            if c.exactMatchesLeftOut > 0 {
                s += "\n\(c.exactMatchesLeftOut) more pairs of equal size are not tabled (over \(Comparisons.exactMatchLimit) in all): each size shows its lowest placement against its highest; every candidate is in candidates.csv.\n"
            }
        }
        return s
    }
}
