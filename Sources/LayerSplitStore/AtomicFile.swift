import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Replacing a file atomically: write a temporary file in the same folder, fsync it, rename() it over the
/// target, fsync the folder. A reader (or a process killed at any moment) sees the old file or the new one,
/// never a half-written one. Weights files, checkpoints and run logs are all written this way.
enum AtomicFile {
    /// The temporary files of `target` start with this (`.log.h5.tmp-<pid>-<random>`).
    static func temporaryPrefix(for target: String) -> String {
        let url = URL(fileURLWithPath: target)
        return "." + url.lastPathComponent + ".tmp-"
    }

    static func temporaryPath(for target: String) -> String {
        let url = URL(fileURLWithPath: target)
        let name = temporaryPrefix(for: target) + "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        return url.deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// Runs `body` with a temporary path next to `target` (optionally a copy of it), then moves the result over
    /// `target` durably. The temporary file is removed if `body` throws.
    static func replace(_ target: String, copyingExisting: Bool = false, _ body: (String) throws -> Void) throws {
        let temp = temporaryPath(for: target)
        do {
            if copyingExisting { try copy(target, to: temp) }
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

    /// Removes temporary files of `target` left by writers that no longer run (killed mid-write).
    static func removeStaleTemporaries(of target: String) {
        let url = URL(fileURLWithPath: target)
        let folder = url.deletingLastPathComponent().path
        let prefix = temporaryPrefix(for: target)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let pid = rest.split(separator: "-").first.flatMap({ pid_t($0) }) else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH {
                unlink(folder + "/" + name)
            }
        }
    }

    /// Copies a file byte for byte (the copy is fsynced later by `replace`).
    static func copy(_ source: String, to destination: String) throws {
        let input = open(source, O_RDONLY)
        guard input >= 0 else { throw StoreError(.fileNotFound, file: source, "cannot read: \(errnoText())") }
        defer { Glibc.close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard output >= 0 else { throw StoreError(.writeFailed, file: destination, "cannot create: \(errnoText())") }
        defer { Glibc.close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n == 0 { break }
            guard n > 0 else { throw StoreError(.writeFailed, file: source, "reading failed: \(errnoText())") }
            var done = 0
            while done < n {
                let w = buffer.withUnsafeBytes { write(output, $0.baseAddress! + done, n - done) }
                guard w > 0 else { throw StoreError(.writeFailed, file: destination, "writing failed: \(errnoText())") }
                done += w
            }
        }
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

    /// Holds an exclusive lock while `body` runs, so that appends by several processes (or threads) follow
    /// each other. The lock is flock() on a hidden lock file beside `path` (`.log.h5.lock`), not on `path`
    /// itself: HDF5 flock()s the files it opens, and a reader opening the log must not fail while a writer waits.
    /// A killed writer's lock is released by the kernel.
    static func withExclusiveLock<R>(_ path: String, _ body: () throws -> R) throws -> R {
        let url = URL(fileURLWithPath: path)
        let lockPath = url.deletingLastPathComponent().appendingPathComponent("." + url.lastPathComponent + ".lock").path
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw StoreError(.writeFailed, file: path, "cannot create the lock file \(lockPath): \(errnoText())") }
        defer { Glibc.close(fd) }   // releases the lock
        guard flock(fd, LOCK_EX) == 0 else { throw StoreError(.writeFailed, file: path, "cannot lock: \(errnoText())") }
        return try body()
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
