import ArgumentParser
import Foundation
import LayerSplitEngine
import LayerSplitReport
import LayerSplitRun
import LayerSplitSearch
import LayerSplitStore
#if canImport(Glibc)
import Glibc
#endif

extension LayerSplitCommand.Bench {
    /// The run store's targets (run store v2): appends whose cost does not grow with the log, bytes written
    /// linear in the trials, reports that stay fast and readable at 100,000 trials, and a real search of many
    /// tiny trials whose time is spent in user space rather than in the kernel copying files.
    struct StoreBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "store",
            abstract: "Measure the run store at scale: appends, bytes written, report time.",
            discussion: """
                Part 1 appends --trials synthetic trial records (a 12-unit S/T space of 4,096 masks, 3 tasks, \
                4 curve points each) to a fresh run log in --folder, then writes the reports from the log. Part 2 \
                runs a real `layersplit search` of every mask of an 8-unit MLP with --search-seeds seeds and 2 \
                training steps per trial, as a child process, and reports its user and system time and the bytes \
                it wrote (getrusage of the child). Bytes written are the kernel's count of bytes the process \
                dirtied for writing (/proc/self/io write_bytes; ru_oublock for the child), as GNU time reports.
                """)

        @Option(help: "Trial records to append in part 1.") var trials: Int = 100_000
        @Option(help: "Seeds of part 2's search (256 masks each); 0 skips part 2.") var searchSeeds: Int = 12
        @Option(help: "Working folder (made afresh; removed at the end unless --keep).") var folder: String = "bench/runs/store"
        @Flag(help: "Keep the working folder.") var keep = false

        func validate() throws {
            guard trials >= 2_000 else { throw ValidationError("--trials must be at least 2000 (appends are timed at trial 1,000), got \(trials)") }
            guard searchSeeds >= 0 else { throw ValidationError("--search-seeds must be 0 or more, got \(searchSeeds)") }
        }

        func run() throws {
            try reportingErrors {
                try? FileManager.default.removeItem(atPath: folder)
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                defer { if !keep { try? FileManager.default.removeItem(atPath: folder) } }
                print("bench store: \(Date()), \(StudyRun.machineDescription())")
                try appendAndReport()
                if searchSeeds > 0 { try searchOfTinyTrials() }
            }
        }

        // MARK: - Part 1: appends and reports

        func appendAndReport() throws {
            let output = folder + "/appends"
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            let records = SyntheticRecords()
            let log = try RunLog.create(at: output + "/log.h5", info: RunInfo(
                searchSpace: "bench store\n", toolVersion: LayerSplitVersion.string, seed: 0, study: "bench-store",
                model: records.spec.description, taskNames: ["a", "b", "c"], allSharedParams: records.parameters.allSharedCount))
            let before = IOCounters.current()
            var seconds = [Double](repeating: 0, count: trials)
            let started = Date()
            for i in 0..<trials {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try log.save(records.trial(i))
                seconds[i] = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            }
            try log.close()
            let appendWall = Date().timeIntervalSince(started)
            let written = IOCounters.current().minus(before)

            let reportStart = Date()
            let report = try StudyRun.report(fromLog: output + "/log.h5")
            try StudyRun.writeReportFiles(report, provenance: SummaryWriter.Provenance(
                command: "layersplit bench store", wallSeconds: appendWall, machine: StudyRun.machineDescription(), trainingSteps: 0), to: output)
            let reportSeconds = Date().timeIntervalSince(reportStart)
            let writtenInAll = IOCounters.current().minus(before)
            let size = folderBytes(output)
            let summary = (try? FileManager.default.attributesOfItem(atPath: output + "/summary.md")[.size] as? Int) ?? 0

            func window(at k: Int) -> (median: Double, mean: Double) {
                let w = Array(seconds[max(0, k - 500)..<min(trials, k + 500)])
                return (w.sorted()[w.count / 2], w.reduce(0, +) / Double(w.count))
            }
            let early = window(at: 1_000), late = window(at: trials - 500)
            let ratio = late.median / early.median
            print("part 1: \(trials) trial records appended to one run log, then reported")
            print(String(format: "  appends: %.1f s in all (%.0f µs per trial on average, snapshots included)", appendWall, 1e6 * appendWall / Double(trials)))
            print(String(format: "  one append, median of the 1,000 around trial 1,000: %.0f µs; around trial %d: %.0f µs; ratio %.2f (target <= 2: %@)",
                         early.median * 1e6, trials, late.median * 1e6, ratio, ratio <= 2 ? "met" : "NOT met"))
            print(String(format: "  mean of those windows (a snapshot rewrite inside one shows here): %.0f µs and %.0f µs; slowest append (the largest snapshot): %.2f s",
                         early.mean * 1e6, late.mean * 1e6, seconds.max() ?? 0))
            let factor = Double(writtenInAll.dirtied) / Double(size)
            print("  bytes written: \(mb(written.dirtied)) by the appends, \(mb(writtenInAll.dirtied)) with the reports (write_bytes; \(mb(writtenInAll.syscall)) through write calls), for a run folder of \(mb(size)) at the end: "
                  + String(format: "%.2fx (target <= 3: %@)", factor, factor <= 3 ? "met" : "NOT met"))
            print(String(format: "  reports from the log (open, group, front, comparisons, 5 files): %.1f s (target <= 30: %@); summary.md %@ for %d candidates",
                         reportSeconds, reportSeconds <= 30 ? "met" : "NOT met", mb(summary), report.candidates.count))
        }

        // MARK: - Part 2: a real search of many tiny trials

        func searchOfTinyTrials() throws {
            let output = folder + "/search"
            let space = folder + "/tiny-trials.yaml"
            let text = """
                # layersplit bench store, part 2: every mask of an 8-unit MLP, \(searchSeeds) seeds, 2 steps per trial.
                study: bench-store-search
                model:
                  units: [linear:32, linear:32, linear:32, linear:32, linear:32, linear:32, linear:32, linear:32]
                data:
                  synthetic: {kind: multi-domain, tasks: 4, classes: 10, features: 64, train: 256, test: 256}
                  validation: 0.25
                states: [S, T]
                strategy: exhaustive
                training: {steps: 2, batch_size: 16, optimizer: sgd, lr: 0.01}
                evaluation: test
                seeds: \(searchSeeds)
                output: \(output)

                """
            try text.write(toFile: space, atomically: true, encoding: .utf8)
            let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            let child = Process()
            child.executableURL = FileManager.default.isExecutableFile(atPath: binary.path)
                ? binary : URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            child.arguments = ["search", space, "--quiet"]
            child.standardOutput = FileHandle.nullDevice
            let errors = Pipe()
            child.standardError = errors
            var before = rusage()
            getrusage(RUSAGE_CHILDREN.rawValue, &before)
            let started = Date()
            try child.run()
            let errorText = errors.fileHandleForReading.readDataToEndOfFile()
            child.waitUntilExit()
            let wall = Date().timeIntervalSince(started)
            guard child.terminationStatus == 0 else {
                throw StudyError("bench store: the search failed (status \(child.terminationStatus)): \(String(decoding: errorText, as: UTF8.self))")
            }
            var after = rusage()
            getrusage(RUSAGE_CHILDREN.rawValue, &after)
            func secs(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
            let user = secs(after.ru_utime) - secs(before.ru_utime)
            let system = secs(after.ru_stime) - secs(before.ru_stime)
            let written = Int(after.ru_oublock - before.ru_oublock) * 512
            let size = folderBytes(output)
            let trialsTrained = 256 * searchSeeds
            let factor = Double(written) / Double(size)
            print("part 2: a real search of \(trialsTrained) trials of 2 steps (256 masks x \(searchSeeds) seeds), one process")
            print(String(format: "  wall %.1f s, user %.1f s, system %.1f s: system = %.0f%% of user (target < 25%%: %@)",
                         wall, user, system, 100 * system / user, system < 0.25 * user ? "met" : "NOT met"))
            print("  bytes written: \(mb(written)) for a run folder of \(mb(size)): " + String(format: "%.2fx (target <= 3: %@)", factor, factor <= 3 ? "met" : "NOT met"))
            let summary = (try? FileManager.default.attributesOfItem(atPath: output + "/summary.md")[.size] as? Int) ?? 0
            print("  summary.md: \(mb(summary))")
        }

        func folderBytes(_ path: String) -> Int {
            guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
            var total = 0
            for case let name as String in walker {
                total += (try? FileManager.default.attributesOfItem(atPath: path + "/" + name)[.size] as? Int) ?? 0
            }
            return total
        }

        func mb(_ bytes: Int) -> String {
            bytes < 1_000_000 ? String(format: "%.1f kB", Double(bytes) / 1e3) : String(format: "%.1f MB", Double(bytes) / 1e6)
        }
    }
}

/// Synthetic trial records for the store benchmark: trial i is mask i mod 4,096 of a 12-unit S/T space, seed
/// i / 4,096; accuracies follow per-unit effects plus seed noise, so the reports have a real front to draw.
struct SyntheticRecords {
    let spec = ModelSpec(inputShape: [32], units: Array(repeating: .linear(16), count: 12), taskClasses: [10, 10, 10])
    let parameters: ParameterModel
    static let units = 12

    init() { parameters = try! ParameterModel(spec: spec) }

    func trial(_ i: Int) -> TrialResult {
        let m = i % (1 << Self.units)
        let mask = SharingMask((0..<Self.units).map { (m >> $0) & 1 == 1 ? SharingState.specific : .shared })
        var rng = SplitMix64(seed: UInt64(i))
        var effect = 0.0
        for u in 0..<Self.units where (m >> u) & 1 == 1 { effect += 0.004 * Double(Self.units - u) / Double(Self.units) }
        var final: [Double] = []
        for t in 0..<3 { final.append(0.75 + Double(t) * 0.02 + effect + Double(rng.next() % 1000) / 50_000 - 0.01) }
        var curve: [CurvePoint] = []
        for p in 1...4 {
            let loss = Float(2) / Float(p)
            curve.append(CurvePoint(step: p * 50, trainLoss: [loss, loss, loss], accuracy: final.map { $0 - 0.05 * Double(4 - p) }))
        }
        return TrialResult(key: TrialKey(mask: mask, seed: UInt64(i >> Self.units), steps: 200), state: .done,
                           counts: parameters.counts(for: mask), accuracy: final, loss: [0.6, 0.7, 0.8], curve: curve,
                           stepsTrained: 200, seconds: 1.5, message: "")
    }
}

/// The kernel's write counters of this process (/proc/self/io).
struct IOCounters {
    /// Bytes dirtied in the page cache for writing (what reaches the disk; GNU time's "File system outputs").
    var dirtied = 0
    /// Bytes passed to write calls.
    var syscall = 0

    static func current() -> IOCounters {
        var c = IOCounters()
        guard let text = try? String(contentsOfFile: "/proc/self/io", encoding: .utf8) else { return c }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let v = Int(parts[1]) else { continue }
            if parts[0] == "write_bytes" { c.dirtied = v }
            if parts[0] == "wchar" { c.syscall = v }
        }
        return c
    }

    func minus(_ o: IOCounters) -> IOCounters { IOCounters(dirtied: dirtied - o.dirtied, syscall: syscall - o.syscall) }
}

