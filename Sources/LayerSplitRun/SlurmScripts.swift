import Foundation

/// The batch scripts of a sharded search on Slurm (`layersplit slurm`), in `OUTPUT/slurm/`:
///
/// - `shards.sh STAGE`: one array task per shard; task I runs `layersplit search SPACE --shard I/N --stage STAGE`.
///   Submitted with `--array=` the shards that have trials in that stage.
/// - `merge.sh STAGE`: the dependent job (`--dependency=afterany:` the array). It runs `layersplit merge`; when
///   the search is complete it stops there (reports written), when the strategy has another stage (greedy
///   rounds, successive-halving rungs) it submits that stage's array and its own next merge, and when shards
///   failed it exits non-zero naming them. Its state is in `slurm/state`, the job ids in `slurm/jobs`.
///
/// Both are resumable: a requeued or rerun task skips the trials its shard log (or any log) already has.
///
/// Every name and path is single-quoted (`'\''` for an embedded quote) wherever it appears, in `#SBATCH`,
/// comment and command lines alike (sbatch reads quotes in `#SBATCH` lines as the shell does), and
/// `refusal()` rejects what quoting cannot make safe: control characters (a newline would end a comment or an
/// `#SBATCH` line and start a command), and in the output folder the `\` and `%` that sbatch would interpret
/// in `--output`.
public struct SlurmScripts: Sendable {
    public var tasks: Int
    public var partition: String?
    public var time: String?
    public var cpus: Int
    public var mem: String?
    /// Absolute paths: jobs may start in another folder, on another node of a shared file system.
    public var binary: String
    public var spaceFile: String
    public var output: String
    public var study: String

    public init(tasks: Int, partition: String?, time: String?, cpus: Int, mem: String?, binary: String,
                spaceFile: String, output: String, study: String) {
        self.tasks = tasks
        self.partition = partition
        self.time = time
        self.cpus = cpus
        self.mem = mem
        self.binary = binary
        self.spaceFile = spaceFile
        self.output = output
        self.study = study
    }

    public var folder: String { output + "/slurm" }
    public var shardsPath: String { folder + "/shards.sh" }
    public var mergePath: String { folder + "/merge.sh" }
    public var statePath: String { folder + "/state" }
    public var jobsPath: String { folder + "/jobs" }
    public var nextPath: String { folder + "/next" }

    /// Why these scripts cannot be written safely, in one line naming the field; nil when they can.
    public func refusal() -> String? {
        let fields: [(String, String?)] = [("study", study), ("--output", output), ("search-space file", spaceFile),
                                           ("--layersplit", binary), ("--partition", partition), ("--time", time), ("--mem", mem)]
        for (field, value) in fields {
            if let value, let problem = SearchSpace.controlCharacterProblem(value) {
                return "\(field): \(problem), which cannot go into a Slurm script safely (a newline would end a comment or #SBATCH line and start a command); remove it"
            }
        }
        if let c = output.first(where: { $0 == "\\" || $0 == "%" }) {
            return "--output: \(output.debugDescription) contains '\(c)', which sbatch would interpret in the logs' --output path; use a folder without it"
        }
        return nil
    }

    /// The `#SBATCH` lines every job shares.
    func commonDirectives() -> [String] {
        var lines: [String] = []
        if let partition { lines.append("#SBATCH --partition=\(quoted(partition))") }
        if let time { lines.append("#SBATCH --time=\(quoted(time))") }
        if let mem { lines.append("#SBATCH --mem=\(quoted(mem))") }
        return lines
    }

    public var shardsScript: String {
        """
        #!/bin/bash
        # Written by `layersplit slurm`: one task per shard of one stage of the search \(quoted(study)).
        #   sbatch --array=0-\(tasks - 1) \(quoted(shardsPath)) STAGE
        # (the merge job submits the next stage itself). Rerunning a task skips its finished trials.
        #SBATCH --job-name=\(jobName)
        #SBATCH --array=0-\(tasks - 1)
        #SBATCH --cpus-per-task=\(cpus)
        \(commonDirectives().joined(separator: "\n"))
        #SBATCH --output=\(quoted(folder + "/logs/shard-%a-job%A.out"))
        #SBATCH --open-mode=append
        #SBATCH --requeue
        set -euo pipefail
        stage=${1:-0}
        exec \(quoted(binary)) search \(quoted(spaceFile)) --output \(quoted(output)) \\
            --shard "${SLURM_ARRAY_TASK_ID}/\(tasks)" --stage "$stage" --threads \(cpus)
        """.replacingOccurrences(of: "\n\n#SBATCH", with: "\n#SBATCH") + "\n"
    }

    public var mergeScript: String {
        """
        #!/bin/bash
        # Written by `layersplit slurm`: merges the shard logs of the search \(quoted(study)) after a stage's array and,
        # when the strategy has another stage, submits it (its array, then this script again after it).
        #   sbatch --dependency=afterany:ARRAY_JOB \(quoted(mergePath)) STAGE
        #SBATCH --job-name=\(jobName)-merge
        #SBATCH --cpus-per-task=1
        \(commonDirectives().joined(separator: "\n"))
        #SBATCH --output=\(quoted(folder + "/logs/merge-job%j.out"))
        #SBATCH --open-mode=append
        set -uo pipefail
        stage=${1:-0}
        here=\(quoted(folder))
        # put FILE LINE [append]: replaces $here/FILE atomically (a new file, synced, renamed over the old one, which
        # is replaced even if it is a symbolic link, never followed), keeping its lines with "append".
        put() {
            local tmp="$here/.$1.tmp-$$"
            rm -f -- "$tmp"
            { if [ "${3:-}" = append ] && [ -f "$here/$1" ] && [ ! -L "$here/$1" ]; then cat -- "$here/$1"; fi
              printf '%s\\n' "$2"; } > "$tmp" && sync -- "$tmp" && mv -f -- "$tmp" "$here/$1"
        }
        \(quoted(binary)) merge \(quoted(output)) --shards \(tasks) --stage "$stage" --next-file "$here/next"
        status=$?
        case $status in
        0)
            put state "complete" ;;
        3)
            read -r next array < "$here/next"
            if ! job=$(sbatch --parsable --array="$array" "$here/shards.sh" "$next"); then
                put state "failed: stage $next could not be submitted"; exit 1
            fi
            job=${job%%;*}
            if ! merge=$(sbatch --parsable --dependency=afterany:"$job" "$here/merge.sh" "$next"); then
                put state "failed: the merge of stage $next could not be submitted"; exit 1
            fi
            line="stage $next: array job $job (tasks $array), merge job ${merge%%;*}"
            echo "$line"
            put jobs "$line" append
            put state "running stage $next" ;;
        *)
            put state "failed: the merge of stage $stage exited with status $status (see $here/logs/merge-job${SLURM_JOB_ID:-}.out)"
            exit "$status" ;;
        esac
        """.replacingOccurrences(of: "\n\n#SBATCH", with: "\n#SBATCH") + "\n"
    }

    var jobName: String {
        let safe = study.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" }
        return "layersplit-" + String(safe)
    }

    /// Writes both scripts (executable) and the logs folder; refuses (see `refusal()`) what cannot be written
    /// safely.
    public func write() throws {
        if let refusal = refusal() { throw StudyError(refusal) }
        try FileManager.default.createDirectory(atPath: folder + "/logs", withIntermediateDirectories: true)
        for (path, text) in [(shardsPath, shardsScript), (mergePath, mergeScript)] {
            try StudyRun.writeAtomically(text, to: path)
            chmod(path, 0o755)
        }
    }

    /// Single-quoted for the shell (and for sbatch's reading of `#SBATCH` lines): `it's` → `'it'\''s'`.
    public func quoted(_ s: String) -> String { Self.quoted(s) }

    /// Single-quoted for the shell: `it's` → `'it'\''s'`.
    public static func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// `0-3`, `0,2,5`: Slurm's array syntax for shard indices.
    public static func arraySpec(_ indices: [Int]) -> String {
        let sorted = indices.sorted()
        guard let first = sorted.first, let last = sorted.last else { return "" }
        if last - first + 1 == sorted.count { return first == last ? "\(first)" : "\(first)-\(last)" }
        return sorted.map(String.init).joined(separator: ",")
    }
}
