import Foundation
import LayerSplitSearch
import LayerSplitStore
#if canImport(Glibc)
import Glibc
#endif

/// A run's output folder and what lives in it: the run log (`log.h5` + `log.journal`), shard logs under
/// `shards/`, pretrained backbones, checkpoints, reports, and the lock that makes one process its writer.
///
/// Every process that writes into the folder holds `.layersplit.lock` first: a single-process search (and
/// `--force`) exclusively, shards and merges shared (many shards write one folder, each its own log, guarded
/// by its own pid lock). So a second search into a folder being written is refused at once, naming the
/// holder, and a search never starts while shards of the folder run.
public struct RunFolder {
    public let path: String

    public init(_ path: String) { self.path = path }

    public var logPath: String { path + "/log.h5" }
    public var pretrainedFolder: String { path + "/pretrained" }
    public var checkpointsFolder: String { path + "/checkpoints" }
    public var lockPath: String { path + "/.layersplit.lock" }

    /// What a run writes at the top of the folder, set aside by `--force`.
    static let runFiles = ["log.h5", "log.journal", "candidates.csv", "front.csv", "front.json", "front.svg",
                           "summary.md", "pretrained", "checkpoints", "models", "shards", "slurm"]

    /// Removes temporary files left by writers that are gone, in the folder and its subfolders. With
    /// `owned` (the caller holds the folder exclusively) every temporary file is stale.
    @discardableResult
    public func removeStaleTemporaries(owned: Bool) -> [String] {
        var removed: [String] = []
        for folder in [path, pretrainedFolder, checkpointsFolder, ShardFiles.folder(path)] {
            removed += AtomicFile.removeStaleTemporaries(inFolder: folder, ownsFolder: owned).map { folder + "/" + $0 }
        }
        return removed
    }

    /// Moves everything an earlier run made into `previous/<time>/` (`--force`): the log, the pretrained
    /// backbones, the checkpoints, the shard logs and the reports. Returns where they went, or nil when there
    /// was nothing to move.
    public func setAside() throws -> String? {
        let present = Self.runFiles.filter { FileManager.default.fileExists(atPath: path + "/" + $0) }
        guard !present.isEmpty else { return nil }
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        var target = path + "/previous/" + stamp
        var n = 1
        while FileManager.default.fileExists(atPath: target) { n += 1; target = path + "/previous/\(stamp)-\(n)" }
        do {
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        } catch {
            throw StudyError("\(target): cannot create the folder to set the old run aside (\(Self.reason(error)))")
        }
        for name in present {
            guard rename(path + "/" + name, target + "/" + name) == 0 else {
                throw StudyError("\(path)/\(name): cannot move it aside into \(target) (\(String(cString: strerror(errno))))")
            }
        }
        return target
    }

    /// The system's reason in an error from Foundation (`Permission denied`, `Read-only file system`), never
    /// its framework wrapping (`The operation could not be completed`, `NSCocoaErrorDomain Code=642`); nil
    /// for an error that is not a file error.
    public static func systemReason(_ error: Error) -> String? {
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        guard ns.domain == NSCocoaErrorDomain else { return nil }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        let posix: Int32? = switch CocoaError.Code(rawValue: ns.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: ENOENT
        case .fileReadNoPermission, .fileWriteNoPermission: EACCES
        case .fileWriteOutOfSpace: ENOSPC
        case .fileWriteVolumeReadOnly: EROFS
        case .fileWriteFileExists: EEXIST
        case .fileReadTooLarge: EFBIG
        default: nil
        }
        return posix.map { String(cString: strerror($0)) } ?? "file operation failed (Foundation error \(ns.code))"
    }

    static func reason(_ error: Error) -> String { systemReason(error) ?? "\(error)" }

    /// Creates the folder (and its parents) if needed, with one line naming the path and the reason when it
    /// cannot be made. Returns whether it had to be created.
    @discardableResult
    public func create() throws -> Bool {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw StudyError("\(path): is a file, not a results folder; remove it or choose another output folder") }
            guard access(path, W_OK) == 0 else { throw StudyError("\(path): the results folder is not writable (\(String(cString: strerror(errno))))") }
            return false
        }
        var attrs = stat()
        if lstat(path, &attrs) == 0 && (attrs.st_mode & S_IFMT) == S_IFLNK {
            throw StudyError("\(path): is a symbolic link to nothing; remove it or choose another output folder")
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw StudyError("\(path): cannot create the results folder (\(Self.reason(error)))")
        }
        return true
    }

    // MARK: - The logs of the folder

    public struct Log {
        public var path: String
        /// nil for the run's own `log.h5`.
        public var shard: Shard?
        public var log: RunLog
        public var info: RunInfo { log.info }
        public var results: [TrialResult] { log.trialsInOrder }
    }

    /// Reads every log of the folder (`log.h5` first, then the shard logs by shard count and index). With
    /// `expectedHash`, refuses any log of another search space; without it, refuses logs that disagree with
    /// each other (a merge must not mix two studies). `spaceName` is the file the user knows the study by.
    public func logs(expectedHash: String?, spaceName: String) throws -> [Log] {
        var logs: [Log] = []
        if RunLog.exists(at: logPath) { logs.append(Log(path: logPath, shard: nil, log: try RunLog.open(at: logPath))) }
        for s in ShardFiles.logs(in: path) { logs.append(Log(path: s.path, shard: s.shard, log: try RunLog.open(at: s.path))) }
        try Self.checkOneSearchSpace(logs, expectedHash: expectedHash, spaceName: spaceName)
        return logs
    }

    static func checkOneSearchSpace(_ logs: [Log], expectedHash: String?, spaceName: String) throws {
        if let expectedHash {
            let wrong = logs.filter { $0.info.searchSpaceHash != expectedHash }
            if let merged = wrong.first(where: { $0.shard == nil }) {
                throw StudyError("\(merged.path): this results folder holds a run of a different version of \(spaceName) (\(merged.info.searchSpaceHash), the file is \(expectedHash)): set another output folder (--output or 'output:'), or move this one away")
            }
            guard wrong.isEmpty else {
                throw StudyError("\(wrong.map(\.path).joined(separator: ", ")) \(wrong.count == 1 ? "was" : "were") written for another search space (\(wrong[0].info.searchSpaceHash)) than \(spaceName) (\(expectedHash)): this folder holds another study or another version of the file; use another output folder, or move those logs away")
            }
            return
        }
        let groups = Dictionary(grouping: logs, by: \.info.searchSpaceHash)
        guard groups.count <= 1 else {
            let listing = groups.sorted { $0.key < $1.key }.map { hash, members in
                "\(hash): \(members.map { ($0.path as NSString).lastPathComponent }.joined(separator: ", "))"
            }.joined(separator: "; ")
            throw StudyError("the logs of this folder belong to \(groups.count) different search spaces (\(listing)); a merge never mixes studies: move the logs of the other study away")
        }
    }

    /// Every trial of `logs` once: the run log's first, then the shard logs' in order. A trial found in several
    /// logs (already merged, or trained by two shards) counts once; `conflicts` names those whose metrics differ.
    public static func union(_ logs: [Log]) -> Union {
        var u = Union()
        for log in logs {
            for r in log.results {
                if let kept = u.results[r.key] {
                    u.duplicates += 1
                    if !sameMetrics(kept, r) {
                        u.conflicts.append("\(r.key.id) differs between \(u.origin[r.key] ?? "?") and \(log.path) (kept the first; were they run with different --threads?)")
                    }
                    continue
                }
                u.results[r.key] = r
                u.origin[r.key] = log.path
            }
        }
        return u
    }

    public struct Union {
        public var results: [TrialKey: TrialResult] = [:]
        /// The log each kept trial comes from.
        public var origin: [TrialKey: String] = [:]
        public var duplicates = 0
        public var conflicts: [String] = []
    }

    /// Equal apart from timing: what determinism promises for two runs of the same key.
    static func sameMetrics(_ a: TrialResult, _ b: TrialResult) -> Bool {
        var a = a, b = b
        a.seconds = 0
        b.seconds = 0
        // NaN never equals itself; compare the bit patterns through their text.
        return a.state == b.state && a.counts == b.counts && "\(a.accuracy)\(a.loss)\(a.curve)" == "\(b.accuracy)\(b.loss)\(b.curve)"
    }
}

/// The exclusive or shared `flock` of a run folder (`RunFolder.lockPath`), held for a process's lifetime or
/// until `unlock()`. The kernel releases it when the process dies, so a lock left by a killed run is taken
/// over at once. An exclusive holder writes its pid, host, start time and command into the file, so a refused
/// process can say who holds it. The file is opened without following symbolic links.
public final class RunLock {
    public enum Mode { case exclusive, shared }
    private var fd: Int32
    public let mode: Mode

    private init(fd: Int32, mode: Mode) {
        self.fd = fd
        self.mode = mode
    }

    deinit { unlock() }

    /// Takes the folder's lock, or refuses at once with one line naming the holder.
    public static func acquire(_ folder: RunFolder, mode: Mode, command: String) throws -> RunLock {
        let path = folder.lockPath
        while true {
            let fd = try FileLock.openLockFile(path)
            guard flock(fd, (mode == .exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 else {
                let code = errno
                close(fd)
                guard code == EWOULDBLOCK else { throw StudyError("\(path): cannot lock (\(String(cString: strerror(code))))") }
                throw StudyError("\(folder.path) is being written by another process (\(holder(path, wanted: mode))): one run folder has one writer; wait for it to finish or stop it, or choose another output folder")
            }
            // The file may have been replaced between open and flock; lock the one at the path.
            var a = stat(), b = stat()
            if fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev {
                let lock = RunLock(fd: fd, mode: mode)
                if mode == .exclusive {
                    let note = "pid \(getpid()) on host \(ProcessInfo.processInfo.hostName) since \(ISO8601DateFormatter().string(from: Date())): \(command)\n"
                    _ = ftruncate(fd, 0)
                    _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
                    _ = fsync(fd)
                }
                return lock
            }
            close(fd)
        }
    }

    /// Who holds the lock: the exclusive holder's note, or, when shards or a merge hold it shared, that.
    static func holder(_ path: String, wanted: Mode) -> String {
        let note = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if let pid = note.split(separator: " ").dropFirst().first.flatMap({ pid_t($0) }), kill(pid, 0) == 0 || errno == EPERM,
           note.contains("on host \(ProcessInfo.processInfo.hostName) ") {
            return note
        }
        return wanted == .exclusive ? "shards or a merge of this folder are running (see shards/.shard-*.pid)" : (note.isEmpty ? "holder unknown" : note)
    }

    /// Releases the lock (also on deinit, or by the kernel when the process ends). An exclusive holder
    /// clears its note.
    public func unlock() {
        guard fd >= 0 else { return }
        if mode == .exclusive { _ = ftruncate(fd, 0) }
        close(fd)
        fd = -1
    }
}
