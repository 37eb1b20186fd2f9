import ArgumentParser
import Foundation
import LayerSplitRun
import LayerSplitStore

extension LayerSplitCommand {
    /// Rewrites run logs of an older format version (version 1: one HDF5 group per candidate) as the current
    /// one, in place, so that published results and old runs read like new ones.
    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rewrite run logs of an older format version as the current one.",
            discussion: """
                Each RUN is a results folder (its log.h5 and its shard logs are migrated) or a log file. The \
                folder's lock is held meanwhile, so a search writing it refuses to start and a running one makes \
                this refuse. Version-1 logs keep every trial; their training-loss curves held the sum over tasks, \
                so the per-task training losses of migrated curves are NaN (the file says migrated_from_version = 1).
                """)

        @Argument(help: "Results folders or run log files.") var runs: [String]

        func run() throws {
            try reportingErrors {
                for run in runs {
                    var isDir: ObjCBool = false
                    guard FileManager.default.fileExists(atPath: run, isDirectory: &isDir) else {
                        throw StudyError("\(run): no such results folder or run log")
                    }
                    let folder = RunFolder(isDir.boolValue ? run : (run as NSString).deletingLastPathComponent)
                    let lock = try RunLock.acquire(folder, mode: .exclusive, command: "layersplit migrate \(run)")
                    defer { lock.unlock() }
                    let logs = isDir.boolValue ? ([folder.logPath] + ShardFiles.logs(in: run).map(\.path)).filter { RunLog.exists(at: $0) }
                                               : [try runLogPath(run)]
                    guard !logs.isEmpty else { throw StudyError("\(run): no run log in this folder; is it the 'output:' of a search?") }
                    for path in logs {
                        let log = try RunLog.open(at: path)
                        let from = log.snapshotVersion
                        if try log.migrate() {
                            print("\(path): format version \(from) -> \(StoreFormat.runLog.version), \(log.trialsInOrder.count) trials, \(log.runs.count) run records")
                        } else {
                            print("\(path): format version \(from) already, unchanged")
                        }
                    }
                }
            }
        }
    }
}
