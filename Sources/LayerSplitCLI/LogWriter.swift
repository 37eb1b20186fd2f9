import ArgumentParser
import Foundation
import LayerSplitEngine
import LayerSplitSearch
import LayerSplitStore

extension LayerSplitCommand {
    /// Appends deterministic trials to a run log in a loop: the writer the crash-safety test kills with
    /// SIGKILL at random moments (Tests/LayerSplitStoreTests/RunLogKillTests.swift checks what it wrote).
    struct LogWriter: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test-log-writer",
            abstract: "Append test trials to a run log (for the kill-and-reopen test).",
            shouldDisplay: false)

        @Option(help: "The run log; created when missing.") var log: String
        @Option(help: "Index of the first trial.") var from: Int = 0
        @Option(help: "Trials to append.") var count: Int = 100

        func run() throws {
            let runLog = try RunLog.openOrCreate(at: log, info: RunInfo(searchSpace: "kill test\n", toolVersion: LayerSplitVersion.string, seed: 7,
                                                                        taskNames: ["a", "b", "c"]))
            defer { try? runLog.close() }
            for i in from..<(from + count) { try runLog.save(SampleTrials.trial(i)) }
        }
    }
}
