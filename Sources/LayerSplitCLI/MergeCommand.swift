import ArgumentParser
import Foundation
import LayerSplitSearch
import LayerSplitRun

extension LayerSplitCommand {
    /// Combines the shard logs of a sharded search into its log.h5 and reports.
    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "merge",
            abstract: "Combine the shard logs of a sharded search (layersplit search --shard, layersplit slurm) into log.h5 and the reports.",
            discussion: """
                Reads RUN/log.h5 and every RUN/shards/shard-I-of-N.h5, refuses logs of another search space, and \
                appends each trial not yet merged once, in the order a single process trains them: the merged \
                log and reports equal a single-process run with the same seeds (apart from timings). Merging \
                again changes nothing. When the search is complete it writes candidates.csv, front.csv, \
                front.json, front.svg and summary.md.

                Exit status: 0 the search is complete and the reports are written; 3 every merged stage is \
                complete and the strategy's next stage (a greedy round, a successive-halving rung) is planned: \
                run its shards, then merge again; 1 trials are missing (the shards that owe them are named) or \
                another error; 2 bad input.
                """)

        @Argument(help: "The results folder of the sharded search (its --output).")
        var folder: String

        @Option(help: "The number of shards the search was split into, to name the shards that owe missing trials (default: from the shard logs' names).")
        var shards: Int?

        @Option(help: "The stage whose shards just ran (merge jobs pass it): its missing trials mean failed shards, not the next stage.")
        var stage: Int?

        @Option(help: "The search-space file; by default the copy stored in the logs is used.")
        var space: String?

        @Option(help: ArgumentHelp("When the next stage is planned, write 'STAGE ARRAY' (its index and the shards to run) here.",
                                   visibility: .hidden))
        var nextFile: String?

        @Flag(help: "Only errors and the final line.")
        var quiet = false

        func validate() throws {
            if let shards, shards < 1 { throw ValidationError("--shards must be at least 1, got \(shards)") }
            if let stage, stage < 0 { throw ValidationError("--stage must be 0 or more, got \(stage)") }
        }

        func run() throws {
            try reportingErrors {
                if let nextFile { unlink(nextFile) }
                let space = try ShardMerge.searchSpace(ofRun: folder, spaceFile: self.space)
                let run = try StudyRun(space: space, output: folder)
                run.command = (["layersplit"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
                let report = try ShardMerge(run: run).merge(shards: shards, expectedStage: stage)
                try present(report, run: run)
            }
        }

        func present(_ report: ShardMerge.Report, run: StudyRun) throws {
            let warn: (String) -> Void = { FileHandle.standardError.write(Data(("warning: " + $0 + "\n").utf8)) }
            let logs = report.shardLogs
            let counts = Set(logs.map(\.shard.count)).sorted()
            let shardText = counts.map { n in
                let indices = logs.filter { $0.shard.count == n }.map(\.shard.index)
                return "shard\(indices.count == 1 ? "" : "s") \(SlurmScripts.arraySpec(indices)) of \(n)"
            }.joined(separator: ", ")
            if !quiet {
                print("merge of \(run.space.study): \(logs.count) shard log\(logs.count == 1 ? "" : "s")\(logs.isEmpty ? "" : " (\(shardText))"); "
                      + "appended \(report.appended) new trial\(report.appended == 1 ? "" : "s") to \(run.logPath) (\(report.total) in all)"
                      + (report.duplicates > 0 ? "; \(report.duplicates) already merged or found twice, counted once" : ""))
            }
            for c in report.conflicts { warn(c) }
            if !report.unfinished.isEmpty && !quiet {
                warn("\(report.unfinished.count) trial\(report.unfinished.count == 1 ? "" : "s") failed or diverged (kept, as a single run keeps them): " + report.unfinished.joined(separator: "; "))
            }
            if !report.unplanned.isEmpty {
                warn("\(report.unplanned.count) trial(s) of the shard logs are not part of the plan and were left out of log.h5: " + report.unplanned.prefix(5).map(\.id).joined(separator: ", ") + (report.unplanned.count > 5 ? ", ..." : ""))
            }
            let spaceFile = run.space.file
            switch report.status {
            case .complete:
                let outcome = report.outcome
                let best = outcome.candidates.filter(\.isDone).max { $0.meanAccuracy < $1.meanAccuracy }
                print("\(run.space.study): search complete: \(outcome.candidates.count) candidates, \(outcome.trainingSteps) training steps; "
                      + (best.map { "best \($0.mask) mean accuracy \(String(format: "%.4f", $0.meanAccuracy)) at \(formatCount($0.counts.stored)) params; " } ?? "")
                      + "reports in \(run.output)/")
            case .nextStage:
                let stage = report.stage!
                let missing = report.missingByShard.values.reduce(0) { $0 + $1.count }
                if let nextFile, report.shardCount != nil {
                    try Data("\(stage.index) \(SlurmScripts.arraySpec(report.shardsWithWork))\n".utf8).write(to: URL(fileURLWithPath: nextFile))
                }
                let who = report.shardCount.map { n in "shards \(SlurmScripts.arraySpec(report.shardsWithWork)) of \(n)" } ?? "the shards"
                print("\(stage) is next: \(missing) trial\(missing == 1 ? "" : "s") to train by \(who). Run them "
                      + "(layersplit search \(spaceFile) --output \(run.output) --shard I/\(report.shardCount.map(String.init) ?? "N") --stage \(stage.index)), then merge again; a Slurm merge job submits them itself")
                throw ExitCode(3)
            case .incomplete:
                let stage = report.stage!
                let missing = report.missingByShard.values.reduce(0) { $0 + $1.count }
                // Each shard's share of the stage: a shard that has none of its share stopped at the end of the
                // previous stage (it finished there before the others), it did not fail.
                var share: [Int: Int] = [:]
                if let n = report.shardCount, let owners = try? ShardPlan.assign(stage, shards: n, cost: run.trialCost()) {
                    for i in owners.values { share[i, default: 0] += 1 }
                }
                let logged = Set(logs.filter { $0.shard.count == report.shardCount }.map(\.shard.index))
                let notStarted = stage.index == 0 ? [] : Set(report.missingByShard.filter {
                    logged.contains($0.key) && share[$0.key] == $0.value.count
                }.keys)
                if self.stage == nil, let n = report.shardCount, !notStarted.isEmpty, notStarted.count == report.missingByShard.count {
                    // By hand without --stage, the shards that finished the previous stage last went on into this
                    // one; the others had stopped, waiting. Nothing failed: this stage is simply next for them.
                    let who = SlurmScripts.arraySpec(report.shardsWithWork)
                    print("\(stage) is next for shards \(who) of \(n): \(missing) of its \(stage.keys.count) trials are theirs (they stopped at the end of the previous stage while other shards finished it and went on; nothing failed). "
                          + "Run them (layersplit search \(spaceFile) --output \(run.output) --shard I/\(n) --stage \(stage.index)), then merge again")
                    throw ExitCode(3)
                }
                var lines = ["error: \(stage) is incomplete: \(missing) of its \(stage.keys.count) trials are missing (the merged log keeps the others)"]
                let byPath = Dictionary(logs.map { ($0.shard, $0) }, uniquingKeysWith: { a, _ in a })
                for (index, keys) in report.missingByShard.sorted(by: { $0.key < $1.key }) {
                    let sample = keys.prefix(3).map(\.id).joined(separator: ", ") + (keys.count > 3 ? ", ..." : "")
                    guard index >= 0, let n = report.shardCount, let shard = try? Shard(index: index, count: n) else {
                        lines.append("  \(keys.count) trials missing (\(sample)); pass --shards N to name the shards that owe them")
                        continue
                    }
                    let state = byPath[shard].map {
                        notStarted.contains(index)
                            ? "its log has \($0.trials) trial\($0.trials == 1 ? "" : "s"), none of this stage: it stopped before the stage began"
                            : "its log has \($0.trials) trial\($0.trials == 1 ? "" : "s"): killed or failed mid-way?"
                    } ?? "no shard log: it never ran, or failed before its first trial"
                    lines.append("  shard \(shard): \(keys.count) trial\(keys.count == 1 ? "" : "s") missing (\(sample)); \(state)")
                }
                if let n = report.shardCount {
                    let array = SlurmScripts.arraySpec(report.shardsWithWork)
                    let which = report.shardsWithWork.count == 1 ? "\(report.shardsWithWork[0])/\(n)" : "I/\(n) for I in \(report.shardsWithWork.map(String.init).joined(separator: ", "))"
                    var rerun = "rerun \(report.shardsWithWork.count == 1 ? "it" : "them") (finished trials are kept): layersplit search \(spaceFile) --output \(run.output) --shard \(which) --stage \(stage.index)"
                    if FileManager.default.fileExists(atPath: run.output + "/slurm/shards.sh") {
                        rerun += ", or sbatch --array=\(array) \(run.output)/slurm/shards.sh \(stage.index) (their Slurm output is in \(run.output)/slurm/logs/)"
                    }
                    lines.append(rerun + "; then merge again")
                }
                FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
                throw ExitCode(1)
            }
        }
    }
}
