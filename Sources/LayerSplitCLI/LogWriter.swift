import ArgumentParser
import Foundation
import LayerSplitEngine
import LayerSplitStore

extension LayerSplitCommand {
    /// Appends deterministic candidates to a run log in a loop: the writer the crash-safety test kills with
    /// SIGKILL at random moments (Tests/LayerSplitStoreTests/RunLogKillTests.swift holds the same records).
    struct LogWriter: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test-log-writer",
            abstract: "Append test candidates to a run log (for the kill-and-reopen test).",
            shouldDisplay: false)

        @Option(help: "The run log; created when missing.") var log: String
        @Option(help: "Index of the first candidate.") var from: Int = 0
        @Option(help: "Candidates to append.") var count: Int = 100

        /// Candidate `i`: the same as `sampleRecord(i)` in the store tests.
        static func record(_ i: Int, tasks: Int = 3, points: Int = 4) -> CandidateRecord {
            let acc = (0..<points).map { p in (0..<tasks).map { t in Double(p * 10 + t) / 100 + Double(i) / 1000 } }
            return CandidateRecord(
                id: "c\(i)", mask: i % 2 == 0 ? "TTSS" : "SSSS", seed: UInt64(i) &* 0x9E37_79B9_7F4A_7C15,
                trialKey: "steps=300,lr=0.05", parameterCounts: ParameterCounts(shared: 1000 + i, specific: 2000, heads: 30),
                curveSteps: (0..<points).map { ($0 + 1) * 100 }, lossCurve: (0..<points).map { 2.0 / Double($0 + 1) + Double(i) },
                accuracyCurve: acc, finalAccuracy: acc.last ?? [], finalLoss: (0..<tasks).map { 0.5 + Double($0) },
                status: i % 7 == 3 ? .diverged : .done, wallSeconds: 1.5 * Double(i), attributes: ["lr": "0.05", "index": "\(i)"])
        }

        func run() throws {
            let runLog = try RunLog.openOrCreate(at: log, searchSpace: "kill test\n", seed: 7, toolVersion: LayerSplitVersion.string)
            for i in from..<(from + count) { try runLog.append(Self.record(i)) }
        }
    }
}
