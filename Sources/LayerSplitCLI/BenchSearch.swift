import ArgumentParser
import Foundation
import LayerSplitEngine
import LayerSplitSearch
import LayerSplitRun

extension LayerSplitCommand.Bench {
    /// Issue 5's target: do greedy and successive halving find what the exhaustive search finds, for a fraction
    /// of its training steps?
    struct SearchEfficiency: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "search",
            abstract: "Compare greedy and successive halving with the exhaustive search at three budgets.",
            discussion: """
                Trains every mask of the benchmark space once (resumable: the trials live in OUTPUT/log.h5), then \
                runs greedy and successive halving against the same trials at each budget. A pick counts as found \
                when it is the exhaustive best or within one paired standard deviation of it (paired over seeds).
                """)

        @Argument(help: "The benchmark's search space.") var space: String = "search-spaces/bench-search.yaml"
        @OptionGroup var engine: EngineOptions
        @Option(help: "Budgets as fractions of extra parameters over all-shared, comma-separated.")
        var budgets: String = "1.5,2.5,4.0"
        @Option(help: "Successive halving: first rung's steps.") var minSteps: Int = 10
        @Option(help: "Successive halving: keep 1/eta per rung.") var eta: Int = 4
        @Option(help: "Results folder (default: the space's output).") var output: String?
        @Flag(help: "No per-trial progress.") var quiet = false

        func run() throws {
            engine.apply()
            try reportingErrors {
                let space = try SearchSpace.load(self.space)
                let run = try StudyRun(space: space, output: output)
                let storage = try run.openLog()
                defer { try? storage.close() }
                let progress = ProgressPrinter(quiet: quiet)
                func study(_ strategy: SearchStrategy, _ halving: SuccessiveHalving?) throws -> Study.Outcome {
                    let s = try run.makeStudy(storage: storage, strategy: strategy, halving: .some(halving))
                    s.observer = progress
                    return try s.optimize()
                }
                let full = SearchDomain(allowed: space.allowed, budget: .unlimited, parameters: run.domain.parameters)
                let exhaustive = try study(ExhaustiveStrategy(domain: full), nil)
                let stepsPerMask = space.training.steps * space.seeds.count
                var lines = ["| budget | exhaustive best (acc) | exhaustive steps | greedy pick (acc) | paired diff | found | steps (share) | halving pick (acc) | paired diff | found | steps (share) |",
                             "|---|---|---|---|---|---|---|---|---|---|---|"]
                for b in budgets.split(separator: ",").compactMap({ Double($0) }) {
                    let budget = Budget.maxSpecificFraction(b)
                    let domain = SearchDomain(allowed: space.allowed, budget: budget, parameters: run.domain.parameters)
                    let admitted = exhaustive.candidates.filter { domain.admits($0.mask) }
                    guard let best = admitted.max(by: { $0.meanAccuracy < $1.meanAccuracy }) else { continue }
                    let exSteps = admitted.count * stepsPerMask
                    let greedy = try study(GreedyStrategy(domain: domain), nil)
                    let halving = try study(ExhaustiveStrategy(domain: domain), SuccessiveHalving(minSteps: minSteps, eta: eta))
                    var row = "| +\(Int(b * 100))% (\(formatCount(budget.limit(allShared: full.parameters.allSharedCount) ?? 0))) | `\(best.mask)` (\(pct(best.meanAccuracy))) | \(exSteps) |"
                    for outcome in [greedy, halving] {
                        let pick = outcome.candidates.filter { domain.admits($0.mask) }.max { $0.meanAccuracy < $1.meanAccuracy }!
                        let d = PairedDifference(best, pick)
                        let found = pick.mask == best.mask || abs(d.mean) <= d.std
                        row += " `\(pick.mask)` (\(pct(pick.meanAccuracy))) | \(String(format: "%+.2f ± %.2f", d.mean * 100, d.std * 100)) | \(found ? "yes" : "no") | \(outcome.trainingSteps) (\(String(format: "%.0f%%", 100 * Double(outcome.trainingSteps) / Double(exSteps)))) |"
                    }
                    lines.append(row)
                }
                print("search efficiency on \(space.study): \(exhaustive.candidates.count) masks x \(space.seeds.count) seeds, \(space.training.steps) steps; halving min_steps \(minSteps), eta \(eta)")
                print(lines.joined(separator: "\n"))
            }
        }

        func pct(_ v: Double) -> String { String(format: "%.2f%%", v * 100) }
    }
}
