import ArgumentParser
import Foundation
import LayerSplitSearch
import LayerSplitRun
import LayerSplitStore

extension LayerSplitCommand {
    /// Writes (and submits) the Slurm scripts of a sharded search.
    struct Slurm: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "slurm",
            abstract: "Write the Slurm batch scripts that split a search across a job array (and submit them with --submit).",
            discussion: """
                Writes OUTPUT/slurm/shards.sh (a job array: task I trains shard I of N with 'layersplit search \
                --shard I/N') and OUTPUT/slurm/merge.sh (a job that depends on the array, runs 'layersplit \
                merge', and for strategies with rounds, greedy and successive halving, submits the next round's \
                array and merge itself until the search is done). Rerunning or requeueing a task skips the \
                trials it has finished; rerunning this command after a failure submits only what is missing. \
                Progress: OUTPUT/slurm/state, OUTPUT/slurm/jobs, OUTPUT/slurm/logs/.
                """)

        @Argument(help: "The search-space file (YAML).")
        var space: String

        @Option(help: "Array tasks (shards) per stage.")
        var tasks: Int

        @Option(help: "#SBATCH --partition.") var partition: String?
        @Option(help: "#SBATCH --time, e.g. 2:00:00 or 1-00:00:00.") var time: String?
        @Option(help: "#SBATCH --cpus-per-task; also the engine threads of each task.") var cpus: Int = 1
        @Option(help: "#SBATCH --mem, e.g. 4G.") var mem: String?

        @Option(help: "Results folder (default: the file's 'output:'); on a file system every node sees.")
        var output: String?

        @Option(help: "The layersplit binary the jobs run (default: this one).")
        var layersplit: String?

        @Flag(help: "Submit the scripts with sbatch and print the job ids.")
        var submit = false

        /// The most array tasks and CPUs per task accepted (Slurm's own default MaxArraySize is 1001).
        static let maxTasks = 10_000, maxCPUs = 1_024

        func validate() throws {
            guard (1...Self.maxTasks).contains(tasks) else { throw ValidationError("--tasks must be from 1 to \(Self.maxTasks), got \(tasks)") }
            guard (1...Self.maxCPUs).contains(cpus) else { throw ValidationError("--cpus must be from 1 to \(Self.maxCPUs), got \(cpus)") }
            // Values with control characters are refused in run(), in one line (SlurmScripts.refusal).
            guard [partition, time, mem].allSatisfy({ $0.map { SearchSpace.controlCharacterProblem($0) == nil } ?? true }) else { return }
            if let time, time.range(of: #"^(\d+-)?\d+(:\d+){0,2}$|^(\d+-\d+)$|^(infinite|unlimited|UNLIMITED|INFINITE)$"#, options: .regularExpression) == nil {
                throw ValidationError("--time '\(time)': use Slurm's forms, e.g. 90 (minutes), 2:00:00, 1-12 or 1-00:00:00")
            }
            if let mem, mem.range(of: #"^\d+[KMGTkmgt]?$"#, options: .regularExpression) == nil {
                throw ValidationError("--mem '\(mem)': use a size such as 4000 (MB), 4G or 512M")
            }
            if let partition, partition.isEmpty || partition.contains(where: { $0.isWhitespace || $0 == "'" || $0 == "\"" }) {
                throw ValidationError("--partition '\(partition)': give a partition name (sinfo lists them)")
            }
        }

        func run() throws {
            try reportingErrors {
                let space = try SearchSpace.load(self.space)
                let output = Self.absolute(self.output ?? space.output)
                let scripts = SlurmScripts(tasks: tasks, partition: partition, time: time, cpus: cpus, mem: mem,
                                           binary: Self.absolute(layersplit ?? Self.executablePath()),
                                           spaceFile: Self.absolute(space.file), output: output, study: space.study)
                // Before anything is made: a name or path that cannot go into a script safely.
                if let refusal = scripts.refusal() { throw InputError(refusal) }
                guard FileManager.default.isExecutableFile(atPath: scripts.binary) else {
                    throw StudyError("--layersplit \(scripts.binary): not an executable file")
                }
                let run = try StudyRun(space: space, output: output)
                try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
                try scripts.write()
                print("wrote \(scripts.shardsPath) (array of \(tasks) tasks) and \(scripts.mergePath)")
                let q = SlurmScripts.quoted

                // Where the search stands: the first stage with missing trials, and which shards owe them.
                let plan = try ShardMerge(run: run).merge(shards: tasks, write: false)
                guard plan.status != .complete, let stage = plan.stage else {
                    print("nothing left to train in \(output): every trial is in its logs; layersplit merge \(q(output)) writes the reports")
                    return
                }
                let array = SlurmScripts.arraySpec(plan.shardsWithWork)
                let trials = plan.missingByShard.values.reduce(0) { $0 + $1.count }
                print("first: \(stage), \(trials) trial\(trials == 1 ? "" : "s") to train, array tasks \(array)")
                guard submit else {
                    // Shell-quoted: pasting these runs nothing but sbatch, whatever the paths hold.
                    print("submit with:\n  job=$(sbatch --parsable --array=\(array) \(q(scripts.shardsPath)) \(stage.index))\n"
                          + "  sbatch --dependency=afterany:${job%%;*} \(q(scripts.mergePath)) \(stage.index)")
                    return
                }
                let job = try Self.sbatch(["--parsable", "--array=\(array)", scripts.shardsPath, String(stage.index)])
                let merge = try Self.sbatch(["--parsable", "--dependency=afterany:\(job)", scripts.mergePath, String(stage.index)])
                let line = "stage \(stage.index): array job \(job) (tasks \(array)), merge job \(merge)"
                try Self.append(line + "\n", to: scripts.jobsPath)
                try AtomicFile.write(Data("running stage \(stage.index)\n".utf8), to: scripts.statePath)
                print("submitted \(line)")
                print("progress: \(scripts.statePath) (\"complete\" when the reports are written), job ids: \(scripts.jobsPath), output: \(scripts.folder)/logs/")
            }
        }

        /// Runs sbatch with `arguments` and returns the job id it prints (`--parsable`: `id` or `id;cluster`).
        static func sbatch(_ arguments: [String]) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["sbatch"] + arguments
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            let stderr = String(decoding: e, as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }.joined(separator: " | ")
            if p.terminationStatus == 127 {
                throw StudyError("sbatch is not on PATH: run this on a Slurm login node, or submit the scripts yourself (see above)")
            }
            let id = String(decoding: o, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
            guard p.terminationStatus == 0, !id.isEmpty, id.allSatisfy(\.isNumber) else {
                throw StudyError("sbatch \(arguments.joined(separator: " ")) failed (exit \(p.terminationStatus)): \(stderr.isEmpty ? "no message" : stderr)")
            }
            return id
        }

        /// Appends `text` to the small file at `path` by replacing it atomically (written whole, synced, renamed):
        /// a symbolic link there is replaced, never followed, and a killed process leaves the old file or the new.
        static func append(_ text: String, to path: String) throws {
            var old = Data()
            var info = stat()
            if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, let existing = FileManager.default.contents(atPath: path) {
                old = existing
            }
            try AtomicFile.write(old + Data(text.utf8), to: path)
        }

        static func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

        static func executablePath() -> String {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        }
    }
}
