import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A run log's journal (`log.journal` beside `log.h5`): an append-only text file of checksummed records, the
/// durable truth while a run goes. Appending a trial writes one line, whatever the size of the log, so the
/// cost of an append does not grow with the number of trials (the HDF5 snapshot is rewritten from it on a
/// geometric schedule; see `RunLog`).
///
/// **Format** (docs/FORMATS.md). UTF-8, one record per line: 16 lower-case hex digits of the FNV-1a 64-bit
/// hash of the JSON text, one space, the JSON text (one object, no newline inside), `\n`. The first record is
/// `{"header": {...}}`; the others are `{"trial": {...}}`, `{"run": {...}}` or `{"search_space": {...}}`.
/// Floats that are not finite are the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
///
/// **Torn tails.** A process killed in the middle of `write` leaves a last line without its newline, or with
/// a checksum that does not match: readers ignore it, and the next writer truncates it away. A bad line
/// *before* the last one is corruption and an error, never skipped.
///
/// **Durability.** Every record is handed to the kernel by one `write` before `append` returns, so a killed
/// process loses nothing it appended. Against a machine crash the file is fsynced after a record when at
/// least `syncInterval` has passed since the last fsync, and always on `sync()`/`close()`; trials take
/// seconds, so in a real run every record is fsynced, while a burst of records costs one fsync per interval
/// instead of one per record.
final class Journal {
    let path: String
    private var fd: Int32
    /// Bytes of complete records in the file.
    private(set) var size: Int
    private var lastSync = Date.distantPast
    static let syncInterval: TimeInterval = 1

    private init(path: String, fd: Int32, size: Int) {
        self.path = path
        self.fd = fd
        self.size = size
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    // MARK: - Records

    /// One line of the journal.
    enum Record: Equatable {
        case header(JournalHeader)
        case trial(JournalTrial)
        case run(JournalRun)
        case searchSpace(JournalSearchSpace)
    }

    private struct Line: Codable {
        var header: JournalHeader?
        var trial: JournalTrial?
        var run: JournalRun?
        var search_space: JournalSearchSpace?
    }

    static func encode(_ record: Record) throws -> [UInt8] {
        var line = Line()
        switch record {
        case .header(let h): line.header = h
        case .trial(let t): line.trial = t
        case .run(let r): line.run = r
        case .searchSpace(let s): line.search_space = s
        }
        let json = try encoder.encode(line)
        let sum = hex(fnv1a64(json))
        return Array(sum.utf8) + [0x20] + Array(json) + [0x0A]
    }

    /// Whether a line (without its newline) carries a matching checksum.
    static func checksumMatches(_ line: ArraySlice<UInt8>) -> Bool {
        guard line.count > 17, line[line.startIndex + 16] == 0x20 else { return false }
        return String(decoding: line.prefix(16), as: UTF8.self) == hex(fnv1a64(line.dropFirst(17)))
    }

    /// The record of one line (without its newline), or nil when its checksum or JSON is bad.
    static func decode(_ line: ArraySlice<UInt8>) -> Record? {
        guard checksumMatches(line), let l = try? decoder.decode(Line.self, from: Data(line.dropFirst(17))) else { return nil }
        if let h = l.header { return .header(h) }
        if let t = l.trial { return .trial(t) }
        if let r = l.run { return .run(r) }
        if let s = l.search_space { return .searchSpace(s) }
        return nil
    }

    private static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return e
    }()

    private static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return d
    }()

    static func fnv1a64<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }

    static func hex(_ h: UInt64) -> String {
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    // MARK: - Reading

    /// What a journal holds.
    struct Contents {
        var header: JournalHeader
        /// The records after the header that start at or after the offset asked for, in order.
        var records: [Record]
        /// Bytes of complete, valid records (where the next record goes).
        var size: Int
        /// Bytes of a torn last line after `size` (0 when the file ends cleanly).
        var tornBytes: Int
        /// Records after the header in the whole file.
        var recordCount: Int
    }

    /// Reads the journal at `path`, returning the records that start at byte `offset` or later (the header is
    /// always read). Throws when a line other than the last is damaged, or the file is not a journal.
    static func read(_ path: String, from offset: Int = 0) throws -> Contents {
        let data = try readAll(path)
        var header: JournalHeader?
        var records: [Record] = []
        var start = 0, line = 0, count = 0
        while start < data.count {
            line += 1
            guard let end = data[start...].firstIndex(of: 0x0A) else {
                // No newline: a torn last record.
                return try finish(header, records, size: start, torn: data.count - start, count: count, path: path)
            }
            // Lines before `offset` (already in the snapshot) are checked, not parsed.
            let skip = header != nil && start < offset
            let record: Record? = skip ? (checksumMatches(data[start..<end]) ? .trial(JournalTrial.placeholder) : nil)
                : decode(data[start..<end])
            guard let record else {
                if end + 1 == data.count {   // the last line: torn by a kill during its write
                    return try finish(header, records, size: start, torn: data.count - start, count: count, path: path)
                }
                throw StoreError(.corrupt, file: path, object: "line \(line)",
                                 "damaged record (bad checksum or JSON) before the end of the journal; the journal is corrupt: restore it from a copy, or move it away to keep only what log.h5 holds")
            }
            if case .header(let h) = record {
                guard header == nil else { throw StoreError(.corrupt, file: path, object: "line \(line)", "a second header record") }
                header = h
            } else {
                guard header != nil else { throw StoreError(.corrupt, file: path, object: "line 1", "the journal does not start with a header record") }
                count += 1
                if !skip { records.append(record) }
            }
            start = end + 1
        }
        return try finish(header, records, size: start, torn: 0, count: count, path: path)
    }

    private static func finish(_ header: JournalHeader?, _ records: [Record], size: Int, torn: Int, count: Int,
                               path: String) throws -> Contents {
        guard let header else {
            throw StoreError(.corrupt, file: path, object: "line 1",
                             "no complete header record (the run was killed while it created the journal?); move the file away")
        }
        guard header.format == JournalHeader.formatName else {
            throw StoreError(.wrongFormat, file: path, object: "header", "is a '\(header.format)' file, not a LayerSplit journal")
        }
        guard header.format_version <= JournalHeader.version else {
            throw StoreError(.wrongFormat, file: path, object: "header.format_version",
                             "journal version \(header.format_version) was written by a newer LayerSplit (this one reads up to \(JournalHeader.version)); update LayerSplit")
        }
        return Contents(header: header, records: records, size: size, tornBytes: torn, recordCount: count)
    }

    static func readAll(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw StoreError(errno == ENOENT ? .fileNotFound : .writeFailed, file: path, "cannot read: \(reason)")
        }
        defer { Glibc.close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            guard n > 0 else { throw StoreError(.corrupt, file: path, "reading failed: \(String(cString: strerror(errno)))") }
            out.append(contentsOf: buffer[0..<n])
        }
        return out
    }

    // MARK: - Writing

    /// Creates a new journal holding `header` (fsynced, with its folder). Throws `.exists` if there is one.
    ///
    /// The journal appears at `path` whole: the header is written to a temporary file, which is then
    /// hard-linked into place (`link` fails if `path` exists, so two creators cannot both win). A writer killed
    /// at any moment leaves either no journal or one with its complete header, never an empty file that no
    /// later run could open. The lock is taken before the link, so the new journal is never seen unlocked.
    static func create(_ path: String, header: JournalHeader) throws -> Journal {
        let temp = AtomicFile.temporaryPath(for: path)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            throw StoreError(.writeFailed, file: path, "cannot create the journal: \(String(cString: strerror(errno)))")
        }
        let journal = Journal(path: path, fd: fd, size: 0)
        defer { unlink(temp) }
        do {
            try journal.lockExclusively()
            try journal.append(.header(header))
            try journal.sync()
            guard link(temp, path) == 0 else {
                let code = errno
                throw StoreError(code == EEXIST ? .exists : .writeFailed, file: path, "cannot create the journal: \(String(cString: strerror(code)))")
            }
            AtomicFile.fsyncFolder(of: path)
        } catch {
            journal.closeQuietly()
            throw error
        }
        return journal
    }

    /// Opens an existing journal for appending after its `validSize` bytes of complete records, cutting away
    /// a torn tail. Only one process may hold a journal open for writing: a second is refused.
    static func openForAppend(_ path: String, validSize: Int) throws -> Journal {
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw StoreError(.writeFailed, file: path, "cannot open the journal for writing: \(String(cString: strerror(errno)))") }
        let journal = Journal(path: path, fd: fd, size: validSize)
        do {
            try journal.lockExclusively()
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw StoreError(.writeFailed, file: path, "cannot stat: \(String(cString: strerror(errno)))") }
            if Int(st.st_size) != validSize {
                guard Int(st.st_size) > validSize, ftruncate(fd, off_t(validSize)) == 0, fsync(fd) == 0 else {
                    throw StoreError(.writeFailed, file: path, "cannot cut the torn last record: \(String(cString: strerror(errno)))")
                }
            }
        } catch {
            journal.closeQuietly()
            throw error
        }
        return journal
    }

    /// Appends one record with a single `write` (see the type's notes on durability). On a failed or short
    /// write the file is cut back to its last complete record, so a full disk leaves no torn line behind.
    func append(_ record: Record) throws {
        guard fd >= 0 else { throw StoreError(.writeFailed, file: path, "the journal is closed") }
        let bytes = try Self.encode(record)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let reason = String(cString: strerror(errno))
                _ = ftruncate(fd, off_t(size))
                throw StoreError(.writeFailed, file: path, "cannot append a record: \(reason)")
            }
            done += n
        }
        size += bytes.count
        if Date().timeIntervalSince(lastSync) >= Self.syncInterval { try sync() }
    }

    /// Makes every appended record durable.
    func sync() throws {
        guard fd >= 0 else { return }
        guard fsync(fd) == 0 else { throw StoreError(.writeFailed, file: path, "fsync failed: \(String(cString: strerror(errno)))") }
        lastSync = Date()
    }

    func close() throws {
        guard fd >= 0 else { return }
        defer { closeQuietly() }
        try sync()
    }

    private func closeQuietly() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    private func lockExclusively() throws {
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            throw StoreError(.writeFailed, file: path, code == EWOULDBLOCK
                             ? "another process is writing this run log; only one writer may hold it (wait for it to finish, or stop it)"
                             : "cannot lock the journal: \(String(cString: strerror(code)))")
        }
    }
}

// MARK: - The records' JSON (a contract: docs/FORMATS.md)

/// The first record: what run the journal belongs to.
struct JournalHeader: Codable, Equatable {
    static let formatName = "layersplit-journal"
    static let version = 1
    var format = formatName
    var format_version = version
    /// A random identifier; the HDF5 snapshot names the journal it was made from with it.
    var id: String
    var created: String
    var search_space: String
    var search_space_hash: String
    var tool_version: String
    var seed: UInt64
    var study: String
    var model: String
    var task_names: [String]
    var all_shared_params: Int
    var search_space_file: String
    var shard: String
    var attributes: [String: String]
}

struct JournalCounts: Codable, Equatable {
    var shared: Int
    var specific: Int
    var heads: Int
}

struct JournalCurvePoint: Codable, Equatable {
    var step: Int
    /// Mean training loss per task since the previous point.
    var train_loss: [Float]
    var accuracy: [Double]
}

/// One finished trial: `TrialResult` field for field.
struct JournalTrial: Codable, Equatable {
    var mask: String
    var seed: UInt64
    var steps: Int
    var state: String
    var params: JournalCounts
    var accuracy: [Double]
    var loss: [Float]
    var curve: [JournalCurvePoint]
    var steps_trained: Int
    var seconds: Double
    var message: String

    /// Stands for a record that was checked but not parsed.
    static let placeholder = JournalTrial(mask: "", seed: 0, steps: 0, state: "", params: JournalCounts(shared: 0, specific: 0, heads: 0),
                                          accuracy: [], loss: [], curve: [], steps_trained: 0, seconds: 0, message: "")
}

struct JournalRun: Codable, Equatable {
    var command: String
    var machine: String
    var finished: String
    var wall_seconds: Double
    var trained: Int
}

/// The run now belongs to this search space (seeds were added; every logged trial stays valid).
struct JournalSearchSpace: Codable, Equatable {
    var text: String
    var hash: String
}
