import ArgumentParser
import Foundation
import LayerSplitReport
import LayerSplitSearch
import LayerSplitRun
import LayerSplitStore

/// The run log of a results folder (or the log file itself), or an error saying how to make one.
func runLogPath(_ run: String) throws -> String {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: run, isDirectory: &isDir) else {
        throw InputError("\(run): no such results folder; run 'layersplit search SPACE.yaml' first")
    }
    let path = isDir.boolValue ? run + "/log.h5" : (run.hasSuffix(".journal") ? String(run.dropLast(8)) + ".h5" : run)
    guard RunLog.exists(at: path) else {
        if isDir.boolValue && !ShardFiles.logs(in: run).isEmpty {
            throw StudyError("\(run): only shard logs so far (shards/); run 'layersplit merge \(run)' to combine them into log.h5 first")
        }
        throw StudyError("\(run): no log.h5 in this folder; is it the 'output:' of a search?")
    }
    return path
}

extension LayerSplitCommand {
    /// Prints the Pareto front of a finished (or partial) run.
    struct Front: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the Pareto front (mean accuracy against stored parameters) of a run.")

        @Argument(help: "A results folder (or its log.h5).") var folder: String
        @Flag(help: "Print front.json instead of a table.") var json = false

        func run() throws {
            try reportingErrors {
                let report = try StudyRun.report(fromLog: try runLogPath(folder))
                if json { print(TableWriter.frontJSON(report), terminator: ""); return }
                print("front of \(report.study): \(report.front.count) of \(report.candidates.count) candidates")
                print("mask".padding(toLength: 12, withPad: " ", startingAt: 0) + "family".padding(toLength: 22, withPad: " ", startingAt: 0)
                      + "params".padding(toLength: 10, withPad: " ", startingAt: 0) + "mean acc   std    vs previous (paired, points; 95% CI; verdict)")
                for (k, i) in report.front.enumerated() {
                    let c = report.candidates[i]
                    let d = report.neighbourDifferences[k].map {
                        String(format: "%+.2f ± %.2f pts, wins %d/%d", $0.mean * 100, $0.std * 100, $0.winsB, $0.seeds)
                            + ($0.interval() == nil ? "; \($0.verdict)" : "; CI \($0.intervalText()); \($0.verdict)")
                    } ?? ""
                    print(c.mask.description.padding(toLength: 12, withPad: " ", startingAt: 0)
                          + c.family.padding(toLength: 22, withPad: " ", startingAt: 0)
                          + formatCount(c.counts.stored).padding(toLength: 10, withPad: " ", startingAt: 0)
                          + String(format: "%.4f   ", c.meanAccuracy) + (c.trials.count < 2 ? "—      " : String(format: "%.4f ", c.stdAccuracy)) + d)
                }
            }
        }
    }

    /// The best mask of a run under a budget.
    struct Best: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the most accurate mask of a run that fits a parameter budget.")

        @Argument(help: "A results folder (or its log.h5).") var folder: String
        @Option(help: "Stored-parameter budget: a count (1.2M, 350k, 120000) or a fraction over all-shared (+25%).")
        var budget: String

        /// The budget, or a one-line refusal (exit status 2) for a negative, NaN, infinite or absurd one.
        func budgetValue() throws -> Budget {
            do { return try Budget.parse(budget) } catch let e as Budget.ParseError { throw InputError("--budget \(e)") }
        }

        func run() throws {
            try reportingErrors {
                let b = try budgetValue()
                let report = try StudyRun.report(fromLog: try runLogPath(folder))
                guard let answer = report.answer(under: b) else {
                    let smallest = report.candidates.map(\.counts.stored).min()
                    throw StudyError("no mask of \(folder) fits \(b)" + (smallest.map { ": the smallest trained mask stores \(formatCount($0)) (\($0)) parameters" } ?? ": the run has no finished candidates"))
                }
                for line in answer.lines { print(line) }
            }
        }
    }
}
