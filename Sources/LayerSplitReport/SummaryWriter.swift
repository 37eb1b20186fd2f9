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
        s += "\nPaired differences: seed k trains every mask from the same pretrained weights, data order and new-parameter initialisation; \"vs previous\" is this front point minus the previous (smaller) one, in points, with the std over seeds and the seeds it wins.\n"
        return s
    }
}
