import Foundation
import LayerSplitEngine
import LayerSplitSearch

/// One share of a sharded search: shard `index` of `count`, counting from 0 like Slurm array task ids.
///
/// Every shard plans the whole search and trains only the trials that `ShardPlan` assigns to its index, into
/// its own log (`OUTPUT/shards/shard-I-of-N.h5`); `layersplit merge` combines the logs. A trial's result
/// depends only on its key and the search space, so the merge equals a single-process run.
public struct Shard: Hashable, Sendable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// The most shards of one search (as many as `layersplit slurm --tasks` accepts).
    public static let maxCount = 10_000

    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw StudyError("a sharded search needs at least 1 shard, got \(count)") }
        guard count <= Self.maxCount else { throw StudyError("\(count) shards: a search splits into at most \(Self.maxCount)") }
        guard (0..<count).contains(index) else {
            throw StudyError("shard index \(index) is out of range for \(count) shard\(count == 1 ? "" : "s"): use 0/\(count) to \(count - 1)/\(count) (shards count from 0, like Slurm array task ids)")
        }
        self.index = index
        self.count = count
    }

    /// `I/N`, e.g. `0/4`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0].trimmingCharacters(in: .whitespaces)),
              let n = Int(parts[1].trimmingCharacters(in: .whitespaces)) else {
            throw StudyError("--shard '\(text)': expected I/N, the shard index and the number of shards, e.g. 0/4 (indices count from 0)")
        }
        try self.init(index: i, count: n)
    }

    /// The shard of a Slurm array task: (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN`) / `SLURM_ARRAY_TASK_STEP`
    /// of `SLURM_ARRAY_TASK_COUNT`; nil outside an array task.
    public static func fromSlurm(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Shard? {
        guard let idText = environment["SLURM_ARRAY_TASK_ID"], let countText = environment["SLURM_ARRAY_TASK_COUNT"] else { return nil }
        guard let id = Int(idText), let count = Int(countText) else {
            throw StudyError("SLURM_ARRAY_TASK_ID '\(idText)' and SLURM_ARRAY_TASK_COUNT '\(countText)' are not numbers; pass --shard I/N")
        }
        let min = Int(environment["SLURM_ARRAY_TASK_MIN"] ?? "") ?? 0
        let step = Swift.max(Int(environment["SLURM_ARRAY_TASK_STEP"] ?? "") ?? 1, 1)
        let index = (id - min) / step
        guard (0..<Swift.max(count, 1)).contains(index), (id - min) % step == 0 else {
            throw StudyError("Slurm array task \(id) (array from \(min), step \(step), \(count) tasks) is not shard 0 to \(count - 1) of \(count): submit the array as --array=0-\(count - 1), or pass --shard I/N")
        }
        return try Shard(index: index, count: count)
    }

    public var description: String { "\(index)/\(count)" }

    /// The shard's own log, under the output folder's `shards/`.
    public var logName: String { "shard-\(index)-of-\(count).h5" }

    /// The shard a log's file name belongs to (`shard-2-of-4.h5`), or nil.
    public init?(logName name: String) {
        guard name.hasPrefix("shard-"), name.hasSuffix(".h5") else { return nil }
        let parts = name.dropFirst(6).dropLast(3).components(separatedBy: "-of-")
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), (0..<n).contains(i), n <= Self.maxCount else { return nil }
        index = i
        count = n
    }
}

/// The expected cost of training a trial, to balance shards by work rather than by count.
///
/// cost = steps trained × (2 F + κ · stored parameters), in FLOP-equivalents. F is the GEMM FLOPs of one
/// training step, the same for every mask (a task-specific unit runs each task's rows through that task's
/// copy, so the products only change shape); the rest of a step (elementwise layers, loss, batching,
/// evaluation) costs about as much again, hence 2 F. κ = 200 per stored parameter per step covers what grows
/// with the copies: optimiser updates, gradient buffers, and the smaller, less efficient per-task products.
/// Fitted on this machine (4×256 MLP, 4 tasks, batch 32 per task, 16 masks): 3.1 ms + 2.1 ns per stored
/// parameter per step, that is 2.1 F and 230 FLOPs per parameter at the ~110 GFLOP/s the products reach.
/// Only ratios within one stage matter, and every process computes the same numbers (FLOPs are counted, not
/// timed).
public struct TrialCost: Sendable {
    /// GEMM FLOPs of one training step of the model (any mask).
    public let stepFLOPs: Double
    public let parameters: ParameterModel
    public static let flopsPerStoredParameter = 200.0

    public init(stepFLOPs: Double, parameters: ParameterModel) {
        self.stepFLOPs = stepFLOPs
        self.parameters = parameters
    }

    /// The expected cost of `key`, continuing a trial of `continuingFrom` steps when given.
    public func cost(_ key: TrialKey, continuingFrom: Int? = nil) -> Double {
        let steps = Double(Swift.max(key.steps - (continuingFrom ?? 0), 1))
        return steps * (2 * stepFLOPs + Self.flopsPerStoredParameter * Double(parameters.counts(for: key.mask).stored))
    }
}

/// Which shard trains which trial of a stage: longest processing time first (Graham 1969). Trials are taken by
/// decreasing cost (ties by trial id) and each goes to the shard with the least cost so far (ties: the lowest
/// index). Deterministic, so every shard computes the same assignment; the largest shard's cost is at most
/// 4/3 of the best possible split.
public enum ShardPlan {
    /// The shard index of each of `keys` (same order).
    public static func assign(_ keys: [TrialKey], costs: [Double], shards: Int) -> [Int] {
        precondition(keys.count == costs.count && shards >= 1)
        let order = keys.indices.sorted {
            costs[$0] != costs[$1] ? costs[$0] > costs[$1] : keys[$0].id < keys[$1].id
        }
        var load = [Double](repeating: 0, count: shards)
        var owner = [Int](repeating: 0, count: keys.count)
        for i in order {
            var best = 0
            for s in 1..<shards where load[s] < load[best] { best = s }
            owner[i] = best
            load[best] += costs[i]
        }
        return owner
    }

    /// The assignment of `stage`'s trials to `shards` shards under `cost`.
    public static func assign(_ stage: Study.Stage, shards: Int, cost: TrialCost) -> [TrialKey: Int] {
        let owners = assign(stage.keys, costs: stage.keys.map { cost.cost($0, continuingFrom: stage.continuingFrom) }, shards: shards)
        return Dictionary(uniqueKeysWithValues: zip(stage.keys, owners))
    }
}

/// The files of a sharded run, under its output folder.
public enum ShardFiles {
    public static func folder(_ output: String) -> String { output + "/shards" }

    public static func logPath(_ output: String, _ shard: Shard) -> String { folder(output) + "/" + shard.logName }

    /// Held by the process that trains a shard, so that two processes never write the same shard log.
    public static func lockPath(_ output: String, _ shard: Shard) -> String {
        folder(output) + "/.shard-\(shard.index)-of-\(shard.count).pid"
    }

    /// Every shard log of the run (its snapshot `shard-I-of-N.h5`, its journal `shard-I-of-N.journal`, or
    /// both), ordered by shard count then index.
    public static func logs(in output: String) -> [(shard: Shard, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder(output))) ?? []
        let logNames = Set(names.map { $0.hasSuffix(".journal") ? String($0.dropLast(8)) + ".h5" : $0 })
        return logNames.compactMap { name in Shard(logName: name).map { ($0, folder(output) + "/" + name) } }
            .sorted { ($0.shard.count, $0.shard.index) < ($1.shard.count, $1.shard.index) }
    }
}

/// An exclusive `flock` on a lock file, released by `unlock()`, on deinit, or by the kernel when the process
/// dies (a killed shard never leaves a stale lock). The holder writes its pid and host into the file, so a
/// refused process can say who holds it. The file is opened with `O_NOFOLLOW` and must be a regular file with
/// one link: a symbolic or hard link planted under its name is refused, never written through.
public final class FileLock {
    private var fd: Int32

    private init(fd: Int32) { self.fd = fd }
    deinit { unlock() }

    /// Waits for the lock.
    public static func lock(_ path: String) throws -> FileLock {
        let fd = try openLockFile(path)
        guard flock(fd, LOCK_EX) == 0 else {
            let problem = String(cString: strerror(errno))
            close(fd)
            throw StudyError("\(path): cannot lock (\(problem))")
        }
        return FileLock(fd: fd)
    }

    /// Takes the lock if no other process holds it; nil when one does.
    public static func tryLock(_ path: String) throws -> FileLock? {
        let fd = try openLockFile(path)
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK { return nil }
            throw StudyError("\(path): cannot lock (\(String(cString: strerror(code))))")
        }
        let lock = FileLock(fd: fd)
        let note = "pid \(getpid()) on host \(ProcessInfo.processInfo.hostName) since \(ISO8601DateFormatter().string(from: Date()))\n"
        _ = ftruncate(fd, 0)
        _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
        return lock
    }

    /// Who holds the lock at `path`, as its holder wrote it: the first line, read without following a link.
    public static func holder(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[..<n], as: UTF8.self)
        return text.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    public func unlock() {
        guard fd >= 0 else { return }
        close(fd)   // releases the flock
        fd = -1
    }

    /// Opens (creating) a lock or pid file, refusing a symbolic link, a hard link and anything not a regular file.
    static func openLockFile(_ path: String) throws -> Int32 {
        // Never through a symbolic link: a planted link would make the pid note overwrite its target.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            let code = errno
            throw StudyError(code == ELOOP ? "\(path): is a symbolic link; LayerSplit never follows one for a lock or pid file: remove it"
                             : "\(path): cannot create the lock file (\(String(cString: strerror(code))))")
        }
        // Nor into another file through a hard link (the holder truncates the file to write its pid), nor a
        // device or pipe planted under the name.
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_nlink == 1 else {
            let what = (info.st_mode & S_IFMT) != S_IFREG ? "is not a regular file" : "has \(info.st_nlink) hard links (another file shares it)"
            close(fd)
            throw StudyError("\(path): \(what); LayerSplit writes lock and pid files only into files of their own: remove it")
        }
        return fd
    }
}
