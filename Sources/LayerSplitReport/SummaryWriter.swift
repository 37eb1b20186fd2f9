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
        s += "| mask | family | stored params | mean acc (%) | std | " + r.taskNames.map { "\($0) (%)" }.joined(separator: " | ")
            + " | vs previous (paired) | 95% CI | verdict |\n"
        s += "|" + String(repeating: "---|", count: 8 + r.taskNames.count) + "\n"
        for (k, i) in r.front.enumerated() {
            let c = r.candidates[i]
            let d = r.neighbourDifferences[k]
            let paired = d.map { String(format: "%+.2f ± %.2f, wins %d/%d", $0.mean * 100, $0.std * 100, $0.winsB, $0.seeds) } ?? "—"
            s += "| `\(c.mask)` | \(c.family) | \(formatCount(c.counts.stored)) (\(c.counts.stored)) | "
                + String(format: "%.2f | ", c.meanAccuracy * 100) + (c.trials.count < 2 ? "—" : String(format: "%.2f", c.stdAccuracy * 100)) + " | "
                + c.taskAccuracy.map { String(format: "%.2f", $0 * 100) }.joined(separator: " | ")
                + " | \(paired) | \(d.map { $0.intervalText() } ?? "—") | \(d.map { "\($0.verdict)" } ?? "—") |\n"
        }
        let steps = r.neighbourDifferences.compactMap { $0 }
        if !steps.isEmpty {
            let unclear = steps.filter { $0.verdict != .better }.count
            s += "\n\(steps.count - unclear) of \(steps.count) front steps are better than the previous point at 95% (paired interval above 0); "
                + "\(unclear) \(unclear == 1 ? "is" : "are") within the seed noise: more parameters bought no accuracy the seeds can tell.\n"
        }
        s += "\n## Best mask for a budget\n\n"
        s += "The most accurate mask that fits, and the cheapest mask that fits whose paired 95% interval against it contains 0 (as good as the seeds can tell), with the seeds that would separate the two if the measured mean and std held.\n\n"
        s += "| budget | limit (params) | most accurate | stored params | mean acc (%) | cheapest indistinguishable | stored params | cheapest − most accurate (paired) | seeds to separate |\n|---|---|---|---|---|---|---|---|---|\n"
        for b in r.standardBudgets {
            let limit = b.limit(allShared: r.allSharedCount).map(formatCount) ?? "—"
            if let a = r.answer(under: b) {
                let c = a.best
                s += "| \(b) | \(limit) | `\(c.mask)` | \(formatCount(c.counts.stored)) | " + String(format: "%.2f ± %.2f", c.meanAccuracy * 100, c.stdAccuracy * 100) + " | "
                if a.oneSeed {
                    s += "one seed: no interval | | | |\n"
                } else if let d = a.difference {
                    s += "`\(a.cheapest.mask)` | \(formatCount(a.cheapest.counts.stored)) | \(d.cellText()) | \(a.seedsToSeparate.map { "\($0)" } ?? "") |\n"
                } else {
                    let runnerUp = a.runnerUp.flatMap { r in
                        a.runnerUpDifference.map { "most accurate cheaper, `\(r.mask)` (\(formatCount(r.counts.stored))): \($0.cellText())" }
                    }
                    s += "itself: \(a.whyItself) | | \(runnerUp ?? "") | |\n"
                }
            } else {
                s += "| \(b) | \(limit) | none fits | | | | | | |\n"
            }
        }
        s += comparisonSections(r)
        s += "\nPaired differences: seed k trains every mask from the same pretrained weights, data order and new-parameter initialisation; \"vs previous\" is this front point minus the previous (smaller) one, in points, with the std over seeds and the seeds it wins. The other tables give each difference the same way, the first-named side minus the second, \"(k/n)\" being the seeds the first-named side wins. "
        s += "The 95% CI is mean ± t(0.975, n−1)·std/√n over the n paired seeds (Student t); the verdict is \"better\" or \"worse\" only when it excludes 0, else \"indistinguishable\", and with one seed there is no interval.\n"
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
            return d.cellText()
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
        let tabled = tabledCandidates(r).flatMap { [Comparisons.against(c.allShared, $0), Comparisons.against(c.independent, $0)] }.compactMap { $0 }
        if let note = MultipleComparisons.note(tabled) { s += "\n" + note }

        if !c.matchedBudgets.isEmpty || c.matchedBudgetsNotMade != nil || c.unmatchedBudgets > 0 {
            let tol = String(format: "%g", c.matchedTolerance * 100)
            s += "\n## Bottom-specific against top-specific at matched budgets\n\n"
            if let why = c.matchedBudgetsNotMade {
                s += "Comparison \(why)\n"
            } else {
                s += "At each budget (the stored size of a bottom-k or top-k candidate): the most accurate bottom-k and top-k masks that fit and store within \(tol)% of it (so the pair's sizes are within \(tol)% of the larger), and bottom − top, paired. "
                s += "Each family's best is chosen on seeds \(c.selectionSeeds.map(String.init).joined(separator: ", ")) and the pair is scored on the other seeds, \(c.scoringSeeds.map(String.init).joined(separator: ", ")) (accuracies shown are on those), so the choice does not inflate the difference.\n\n"
                if !c.matchedBudgets.isEmpty {
                    s += "| budget (params) | best bottom-k | best top-k | bottom − top (scoring seeds) |\n|---|---|---|---|\n"
                    let scoring = Set(c.scoringSeeds)
                    func side(_ x: Candidate?) -> String {
                        x.map { "`\($0.mask)` (\(formatCount($0.counts.stored))) " + String(format: "%.2f", Comparisons.mean($0, over: scoring) * 100) } ?? "none within \(tol)%"
                    }
                    for m in c.matchedBudgets {
                        s += "| \(formatCount(m.limit)) | \(side(m.bottom)) | \(side(m.top)) | \(paired(m.difference)) |\n"
                    }
                    if let note = MultipleComparisons.note(c.matchedBudgets.compactMap(\.difference)) { s += "\n" + note }
                }
                if c.unmatchedBudgets > 0 {
                    s += "\n\(c.unmatchedBudgets) budget(s) have a mask of only one family within \(tol)% and are not compared.\n"
                }
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
            if let note = MultipleComparisons.note(c.exactMatches.map(\.difference)) { s += "\n" + note }
            if c.exactMatchesLeftOut > 0 {
                s += "\n\(c.exactMatchesLeftOut) more pairs of equal size are not tabled (over \(Comparisons.exactMatchLimit) in all): each size shows its lowest placement against its highest; every candidate is in candidates.csv.\n"
            }
        }
        return s
    }
}
