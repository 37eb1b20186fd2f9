import ArgumentParser
import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitSearch
import LayerSplitRun
import LayerSplitStore

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
                retrained. The seeds are the file's 'seeds:' (there is no --seed). The search-space format is in \
                docs/SEARCH-SPACES.md.
                """,
            aliases: ["run"])

        @Argument(help: "The search-space file (YAML), e.g. search-spaces/quickstart.yaml.")
        var space: String = "search-spaces/quickstart.yaml"

        @OptionGroup var threading: ThreadOptions

        /// Declared only to refuse it: a search's seeds are its search space's `seeds:` (see `run()`).
        @Option(help: ArgumentHelp("Not for search: set 'seeds:' in the search space.", visibility: .hidden))
        var seed: String?

        @Option(help: "Results folder (default: the file's 'output:').")
        var output: String?

        @Flag(help: "Start afresh when the results folder holds a run of a different version of the search space (the old log is kept beside it).")
        var force = false

        @Flag(help: "No progress output; only the final summary line.")
        var quiet = false

        @Option(help: ArgumentHelp(
            "Train only shard I of N (I from 0) into OUTPUT/shards/, balanced by expected cost; 'layersplit merge OUTPUT' combines the shards. Inside a Slurm array task the default comes from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT; 'none' runs the whole search there.",
            valueName: "I/N"))
        var shard: String?

        @Option(help: "With --shard: train nothing past this stage (a greedy round or a successive-halving rung; the Slurm scripts run one stage per array).")
        var stage: Int?

        func validate() throws {
            if let shard, shard != "none" {
                do { _ = try Shard(parsing: shard) } catch let e as StudyError { throw ValidationError(e.description) }
                if force { throw ValidationError("--force cannot be used with --shard: a shard never moves the merged log aside; clear the output folder instead") }
            }
            if let stage, stage < 0 { throw ValidationError("--stage must be 0 or more, got \(stage)") }
        }

        /// The shard to run: --shard, else the Slurm array task's, else nil (the whole search).
        func resolvedShard() throws -> (Shard, fromSlurm: Bool)? {
            if shard == "none" { return nil }
            if let shard { return (try Shard(parsing: shard), false) }
            return try Shard.fromSlurm().map { ($0, true) }
        }

        func run() throws {
            try reportingErrors {
                if let seed {
                    let shown = String(seed.debugDescription.dropFirst().dropLast())
                    throw InputError("--seed \(shown): search takes its seeds from the search space, not from --seed; set 'seeds: [\(shown)]' in \(self.space) (or 'seeds: N' for seeds 0 to N-1)")
                }
                threading.apply()
                Interruption.installSignalHandlers()
                if !FileManager.default.fileExists(atPath: self.space) {
                    throw InputError("\(self.space): no such search-space file; see search-spaces/ for examples")
                }
                let space = try SearchSpace.load(self.space)
                let shard = try resolvedShard()
                if shard == nil, stage != nil { throw InputError("--stage only applies to a shard (--shard I/N)") }
                let run = try StudyRun(space: space, output: output)
                run.command = (["layersplit"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
                let progress = ProgressPrinter(quiet: quiet)
                run.observer = progress
                run.say = { progress.note($0) }
                if let (shard, fromSlurm) = shard {
                    do { try runShard(run, shard, fromSlurm: fromSlurm) } catch let e as Interrupted {
                        throw Interruption.report(e, log: ShardFiles.logPath(run.output, shard))
                    }
                    return
                }
                if !quiet {
                    FileHandle.standardError.write(Data("""
                        study \(space.study): \(run.tasks.count) tasks, model \(run.modelSpec), \(run.domain.allMasks.count) masks within \(space.budget), strategy \(space.strategy.rawValue), seeds \(space.seeds.count), output \(run.output)

                        """.utf8))
                }
                let outcome: Study.Outcome
                do { outcome = try run.run(force: force) } catch let e as Interrupted {
                    throw Interruption.report(e, log: run.logPath)
                }
                let best = outcome.candidates.filter(\.isDone).max { $0.meanAccuracy < $1.meanAccuracy }
                print("\(space.study): \(outcome.candidates.count) candidates, \(outcome.trainingSteps) training steps; "
                      + (best.map { "best \($0.mask) mean accuracy \(String(format: "%.4f", $0.meanAccuracy)) at \(formatCount($0.counts.stored)) params; " } ?? "")
                      + "reports in \(run.output)/")
            }
        }
    }
}

extension LayerSplitCommand.Search {
    /// One shard: its share of each stage it can reach, then a line saying what is left and for whom.
    func runShard(_ run: StudyRun, _ shard: Shard, fromSlurm: Bool) throws {
        let space = run.space
        let say: (String) -> Void = { line in if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) } }
        say("study \(space.study), shard \(shard)\(fromSlurm ? " (from SLURM_ARRAY_TASK_ID; --shard none runs the whole search)" : ""): \(run.domain.allMasks.count) masks within \(space.budget), strategy \(space.strategy.rawValue), seeds \(space.seeds.count), log \(ShardFiles.logPath(run.output, shard))")
        let result = try run.runShard(shard, lastStage: stage) { share in
            say("\(share.stage): \(share.mine) of its \(share.stage.keys.count) trials are shard \(shard)'s (\(String(format: "%.1f", share.costShare * 100))% of its expected cost)")
        }
        let outcome = result.outcome
        let head = "\(space.study) shard \(shard): trained \(result.trained) trial\(result.trained == 1 ? "" : "s") into \(ShardFiles.logPath(run.output, shard))"
        guard outcome.waitingForOtherShards, let waiting = outcome.waitingStage else {
            print("\(head); the search needs nothing more from any shard: 'layersplit merge \(run.output)' writes the reports")
            return
        }
        if let stage, waiting.index < stage {
            // This array's stage cannot start: an earlier one is incomplete.
            throw StudyError("\(head); \(waiting) is incomplete: \(outcome.missing.count) of its \(waiting.keys.count) trials are missing (other shards' share), so stage \(stage) cannot start. Rerun the missing shards of \(waiting), merge ('layersplit merge \(run.output)'), then this stage")
        }
        if let stage, waiting.index > stage {
            print("\(head); stage \(stage) is complete and \(waiting) is next: 'layersplit merge \(run.output)' plans it")
            return
        }
        print("\(head); waiting for other shards: \(outcome.missing.count) trial\(outcome.missing.count == 1 ? " of \(waiting) is" : "s of \(waiting) are") theirs. When every shard is done, 'layersplit merge \(run.output)' combines them"
              + (space.strategy == .greedy || space.halving != nil ? " and plans the next stage" : ""))
    }
}

extension Interruption {
    /// Makes SIGINT and SIGTERM stop a search cleanly: the first sets the request that the study and the
    /// trial runner check (at the next step boundary the trial in progress is dropped); a second ends the
    /// process at once, as if there were no handler (the log still holds only whole trials).
    static func installSignalHandlers() {
        _ = Interruption.requestedSignal   // initialise the flag here, not inside the handler
        let handler: @convention(c) (Int32) -> Void = { sig in
            if Interruption.requestedSignal != nil {
                signal(sig, SIG_DFL)
                raise(sig)
                return
            }
            Interruption.request(signal: sig)
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }

    /// Says in one line what a stopped search saved and how to continue, and gives the exit status: 128 +
    /// the signal (130 for SIGINT, 143 for SIGTERM).
    static func report(_ e: Interrupted, log: String) -> ExitCode {
        let name = e.signal == SIGINT ? "SIGINT" : e.signal == SIGTERM ? "SIGTERM" : "signal \(e.signal)"
        let trials = (try? RunLog.open(at: log).trialsInOrder.count) ?? 0
        let saved = trials == 0
            ? "no trial had finished, so nothing is saved; rerun the same command to start"
            : "\(trials) finished trial\(trials == 1 ? " is" : "s are") saved in \(log) (the trial in progress was dropped); rerun the same command to continue"
        let clear = isatty(STDERR_FILENO) != 0 ? "\r\u{1B}[2K" : ""   // after an in-place progress line
        FileHandle.standardError.write(Data("\(clear)stopped by \(name): \(saved)\n".utf8))
        return ExitCode(128 + e.signal)
    }
}

/// A value the user wrote on the command line that is refused after parsing: reported in one line (not with
/// ArgumentParser's usage text) with exit status 2, like a search-space field.
struct InputError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body`, turning LayerSplit's errors into one line on standard error and a non-zero exit status:
/// 2 for a problem in the input the user wrote (a search-space field, an `InputError`, a file named on the
/// command line that does not exist), 1 for anything else (`ErrorReport`).
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        let (line, status) = ErrorReport.of(error)
        FileHandle.standardError.write(Data("error: \(line)\n".utf8))
        throw ExitCode(status)
    }
}

/// The one line (without `error: `) and the exit status of an error, for `reportingErrors` and for errors that
/// reach the root command.
enum ErrorReport {
    static func of(_ error: Error) -> (line: String, status: Int32) {
        switch error {
        case let e as InputError:
            return (oneLine(e.description), 2)
        case let e as ValidationError:
            return (oneLine(e.message), 2)
        case let e as DataError:
            if case .spec = e { return (oneLine(e.description), 2) }
            // A file named on the command line that does not exist is bad input, like a mistyped option.
            if case let .file(path, _) = e, CommandLine.arguments.dropFirst().contains(path),
               !FileManager.default.fileExists(atPath: path) {
                return (oneLine(e.description), 2)
            }
            return (oneLine(e.description), 1)
        case let e as StoreError:
            // Likewise a weights file or log named on the command line (`--init FILE`) that does not exist.
            let named = e.kind == .fileNotFound && CommandLine.arguments.dropFirst().contains(e.file)
            return (oneLine(e.description), named ? 2 : 1)
        default:
            if let system = systemReason(error) { return (system, 1) }
            return (oneLine((error as? CustomStringConvertible)?.description ?? String(describing: error)), 1)
        }
    }

    /// Foundation's file errors as the system says them (`PATH: Read-only file system`), never the raw
    /// `Error Domain=NSCocoaErrorDomain Code=642 ...` text; nil for other errors.
    static func systemReason(_ error: Error) -> String? {
        let ns = error as NSError
        let path = ns.userInfo[NSFilePathErrorKey] as? String ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        return RunFolder.systemReason(error).map { (path.map { $0 + ": " } ?? "") + $0 }
    }
}
