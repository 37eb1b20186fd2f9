import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Replacing a file atomically: write a temporary file in the same folder, fsync it, rename() it over the
/// target, fsync the folder. A reader (or a process killed at any moment) sees the old file or the new one,
/// never a half-written one. Weights files, checkpoints, run-log snapshots (`HDF5File.writeAtomically`) and
/// reports are all written this way.
///
/// Temporary files are named `.NAME.tmp-<pid>-<random>@<host>`, so that a later run can tell a temporary file
/// of a writer that is gone (same host, pid no longer running) from one still being written, also on a file
/// system shared by several hosts.
public enum AtomicFile {
    /// The temporary files of `target` start with this (`.log.h5.tmp-`).
    static func temporaryPrefix(for target: String) -> String {
        let url = URL(fileURLWithPath: target)
        return "." + url.lastPathComponent + ".tmp-"
    }

    static let host = ProcessInfo.processInfo.hostName

    static func temporaryPath(for target: String) -> String {
        let url = URL(fileURLWithPath: target)
        let name = temporaryPrefix(for: target) + "\(getpid())-\(UInt32.random(in: 0...UInt32.max))@\(host)"
        return url.deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
    public static func write(_ bytes: Data, to path: String) throws {
        try replace(path) { temp in
            let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
            guard fd >= 0 else { throw StoreError(.writeFailed, file: path, "cannot create: \(errnoText())") }
            defer { Glibc.close(fd) }
            try bytes.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw StoreError(.writeFailed, file: path, "cannot write: \(errnoText())") }
                    done += n
                }
            }
        }
    }

    /// Runs `body` with a temporary path next to `target`, then moves the result over `target` durably. The
    /// temporary file is removed if `body` throws.
    static func replace(_ target: String, _ body: (String) throws -> Void) throws {
        let temp = temporaryPath(for: target)
        do {
            try body(temp)
            try fsyncFile(temp, label: target)
            guard rename(temp, target) == 0 else {
                throw StoreError(.writeFailed, file: target, "cannot rename the new file into place: \(errnoText())")
            }
            fsyncFolder(of: target)
        } catch var error as StoreError {
            unlink(temp)
            if error.file == temp { error.file = target }   // name the file the caller asked for
            throw error
        } catch {
            unlink(temp)
            throw error
        }
    }

    /// Removes the temporary files in `folder` (not below it) left by writers that are gone: on this host,
    /// with a pid that no longer runs. With `ownsFolder` (the caller holds the folder exclusively), every
    /// temporary file of another process is stale, whatever its host. Returns the names removed.
    @discardableResult
    public static func removeStaleTemporaries(inFolder folder: String, ownsFolder: Bool = false) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var removed: [String] = []
        for name in names {
            guard name.hasPrefix("."), let range = name.range(of: ".tmp-") else { continue }
            let rest = name[range.upperBound...]
            let parts = rest.split(separator: "@", maxSplits: 1)
            let host = parts.count == 2 ? String(parts[1]) : nil
            guard let pid = parts[0].split(separator: "-").first.flatMap({ pid_t($0) }) else { continue }
            let mine = pid == getpid() && (host == nil || host == Self.host)
            let gone = (host == nil || host == Self.host) && kill(pid, 0) != 0 && errno == ESRCH
            if !mine && (ownsFolder || gone), unlink(folder + "/" + name) == 0 { removed.append(name) }
        }
        return removed
    }

    /// Removes every temporary file of `target` made by another process. Only for a caller that is the
    /// target's one writer (it holds the target's lock), so no other process can be writing one of them: they
    /// are left by writers that were killed, whatever their host. Returns the names removed.
    @discardableResult
    public static func removeTemporaries(of target: String) -> [String] {
        let folder = URL(fileURLWithPath: target).deletingLastPathComponent().path
        let prefix = temporaryPrefix(for: target)
        let mine = prefix + "\(getpid())-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        return names.filter { $0.hasPrefix(prefix) && !($0.hasPrefix(mine) && $0.hasSuffix("@" + host)) }
            .filter { unlink(folder + "/" + $0) == 0 }
    }

    static func fsyncFile(_ path: String, label: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw StoreError(.writeFailed, file: label, "cannot reopen the new file to sync it: \(errnoText())") }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw StoreError(.writeFailed, file: label, "fsync failed: \(errnoText())") }
    }

    /// Makes the rename itself durable (best effort: some file systems refuse fsync on folders).
    static func fsyncFolder(of path: String) {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let fd = open(folder, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            Glibc.close(fd)
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
