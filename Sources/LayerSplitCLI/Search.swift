import ArgumentParser
import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitSearch
import LayerSplitStudy

extension LayerSplitCommand {
    /// The main job: search a space of sharing masks and report the Pareto front.
    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "search",
            abstract: "Search the sharing masks of a search space and report the Pareto front (the main job).",
            discussion: """
                Trains every candidate the strategy picks (each from the seed's pretrained weights), logs every \
                trial in OUTPUT/log.h5, and writes candidates.csv, front.csv, front.json, front.svg and summary.md. \
                Rerunning the same command continues a killed run: finished trials are read from the log, not \
                retrained. The search-space format is in docs/SEARCH-SPACES.md.
                """,
            aliases: ["run"])

        @Argument(help: "The search-space file (YAML), e.g. search-spaces/quickstart.yaml.")
        var space: String = "search-spaces/quickstart.yaml"

        @OptionGroup var engine: EngineOptions

        @Option(help: "Results folder (default: the file's 'output:').")
        var output: String?

        @Flag(help: "Start afresh when the results folder holds a run of a different version of the search space (the old log is kept beside it).")
        var force = false

        @Flag(help: "No progress output; only the final summary line.")
        var quiet = false

        func run() throws {
            engine.apply()
            try reportingErrors {
                let space = try SearchSpace.load(self.space)
                let run = try StudyRun(space: space, output: output)
                run.command = (["layersplit"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
                let progress = ProgressPrinter(quiet: quiet)
                run.observer = progress
                if !quiet {
                    FileHandle.standardError.write(Data("""
                        study \(space.study): \(run.tasks.count) tasks, model \(run.modelSpec), \(run.domain.allMasks.count) masks within \(space.budget), strategy \(space.strategy.rawValue), seeds \(space.seeds.count), output \(run.output)

                        """.utf8))
                }
                let outcome = try run.run(force: force)
                let best = outcome.candidates.filter(\.isDone).max { $0.meanAccuracy < $1.meanAccuracy }
                print("\(space.study): \(outcome.candidates.count) candidates, \(outcome.trainingSteps) training steps; "
                      + (best.map { "best \($0.mask) mean accuracy \(String(format: "%.4f", $0.meanAccuracy)) at \(formatCount($0.counts.stored)) params; " } ?? "")
                      + "reports in \(run.output)/")
            }
        }
    }
}

/// Runs `body`, turning LayerSplit's errors into one line on standard error and a non-zero exit status:
/// 2 for a problem in the input the user wrote (a search-space field), 1 for anything else.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as DataError {
        FileHandle.standardError.write(Data("error: \(e)\n".utf8))
        if case .spec = e { throw ExitCode(2) }
        throw ExitCode(1)
    } catch let e as ExitCode {
        throw e
    } catch let e as CustomStringConvertible & Error {
        FileHandle.standardError.write(Data("error: \(e)\n".utf8))
        throw ExitCode(1)
    }
}
