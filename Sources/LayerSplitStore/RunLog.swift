import Foundation
import LayerSplitEngine
import LayerSplitSearch
#if canImport(Glibc)
import Glibc
#endif

/// What a run log says about its run.
public struct RunInfo: Hashable, Sendable {
    /// The search space file's text, as given.
    public var searchSpace: String
    /// `RunLog.hash(ofSearchSpace:)` of it.
    public var searchSpaceHash: String
    public var toolVersion: String
    public var seed: UInt64
    /// ISO 8601 time of creation.
    public var created: String
    public var study: String
    /// The model description (`ModelSpec.description`).
    public var model: String
    public var taskNames: [String]
    /// Stored parameters of the all-shared model (0 when unknown).
    public var allSharedParams: Int
    /// Where the search space was read from, so that `layersplit merge` resolves its relative data paths.
    public var searchSpaceFile: String
    /// `I/N` for a shard's log, empty for the run's own.
    public var shard: String
    /// Anything else, as text.
    public var attributes: [String: String]

    public init(searchSpace: String, toolVersion: String, seed: UInt64, study: String = "", model: String = "",
                taskNames: [String] = [], allSharedParams: Int = 0, searchSpaceFile: String = "", shard: String = "",
                attributes: [String: String] = [:], created: String = ISO8601DateFormatter().string(from: Date())) {
        self.searchSpace = searchSpace
        self.searchSpaceHash = RunLog.hash(ofSearchSpace: searchSpace)
        self.toolVersion = toolVersion
        self.seed = seed
        self.created = created
        self.study = study
        self.model = model
        self.taskNames = taskNames
        self.allSharedParams = allSharedParams
        self.searchSpaceFile = searchSpaceFile
        self.shard = shard
        self.attributes = attributes
    }
}

/// A search's run log: the store of its trials (`TrialStorage`), kept as two files in the run folder.
///
/// - `NAME.journal` (`log.journal`): an append-only journal of checksummed records (`Journal`), the durable
///   truth while a run goes. Saving a trial appends one line to it: constant cost, whatever the log's size.
/// - `NAME.h5` (`log.h5`): the HDF5 file users read (h5py, pandas, `layersplit inspect`), one column per field
///   (docs/FORMATS.md). It is a *snapshot*, rewritten whole from memory (temporary file, fsync, rename) when
///   the trials saved since the last snapshot reach half of those in it, and on `close()`. The total rewriting
///   is then linear in the number of trials (a geometric series: at most 3x the final file), and the file lags
///   the journal by at most a third of the trials. It names the journal it was made from and how many of the
///   journal's bytes it holds, so opening reads the snapshot and replays only the journal's tail.
///
/// **Crash safety.** A trial is stored whole or not at all: its journal line is written by one `write`, and a
/// line torn by a kill is dropped on open (and cut away by the next writer). The snapshot is replaced
/// atomically. So a run killed at any moment loses nothing it saved (tested with SIGKILL at random moments).
///
/// **One writer.** The first write takes an exclusive `flock` on the journal, held until `close()`; a second
/// process writing the same log is refused with one line. Readers take no lock.
///
/// Nothing is created on disk before the first write, so a run that fails before its first trial leaves no
/// log behind. Version-1 logs (one HDF5 group per candidate) are read; the first write, or `layersplit
/// migrate`, turns them into version 2.
public final class RunLog: TrialStorage {
    /// The snapshot, `NAME.h5`.
    public let path: String
    /// The journal beside it, `NAME.journal`.
    public let journalPath: String
    public private(set) var info: RunInfo
    /// Invocations recorded in the log, oldest first.
    public private(set) var runs: [Run] = []
    /// The `format_version` of the snapshot when it was opened (2 for a new log).
    public private(set) var snapshotVersion: Int64
    /// Trials saved through this object (trained by this process), as opposed to read back.
    public private(set) var saved = 0

    private var trials: [TrialResult] = []
    private var index: [TrialKey: Int] = [:]
    private var journal: Journal?
    /// The journal this log continues: its id and size of valid records (nil: none on disk yet).
    private var journalID: String?
    private var journalSize = 0
    /// A header-only journal that does not belong to the snapshot (its creation was interrupted): replaced on
    /// the first write.
    private var journalIsOrphan = false
    /// Trials and runs in the snapshot on disk, and whether it exists.
    private var snapshotTrials = 0, snapshotRuns = 0
    private var snapshotExists: Bool
    private var snapshotCurrent: Bool

    /// Task count of the columns (fixed by the task names, or by the first trial with metrics).
    private var taskCount: Int?

    private init(path: String, info: RunInfo, snapshotExists: Bool, snapshotVersion: Int64) {
        self.path = path
        self.journalPath = RunLog.journalPath(for: path)
        self.info = info
        self.snapshotExists = snapshotExists
        self.snapshotCurrent = snapshotExists && snapshotVersion == StoreFormat.runLog.version
        self.snapshotVersion = snapshotVersion
        taskCount = info.taskNames.isEmpty ? nil : info.taskNames.count
    }

    /// `log.h5` → `log.journal`.
    public static func journalPath(for path: String) -> String {
        (path.hasSuffix(".h5") ? String(path.dropLast(3)) : path) + ".journal"
    }

    /// Whether a log (snapshot or journal) exists at `path`.
    public static func exists(at path: String) -> Bool {
        access(path, F_OK) == 0 || access(journalPath(for: path), F_OK) == 0
    }

    /// A stable identifier of a search space's text: FNV-1a (64-bit) of its UTF-8 bytes, as `fnv1a64:<hex>`.
    public static func hash(ofSearchSpace text: String) -> String {
        "fnv1a64:" + Journal.hex(Journal.fnv1a64(Array(text.utf8)))
    }

    // MARK: - Opening

    /// A new, empty log for `info`; nothing is written until the first trial or run is saved. Throws `.exists`
    /// if a log is at `path`.
    public static func create(at path: String, info: RunInfo) throws -> RunLog {
        guard !exists(at: path) else {
            throw StoreError(.exists, file: path, "a run log exists already; open it to continue, or choose another results folder")
        }
        return RunLog(path: path, info: info, snapshotExists: false, snapshotVersion: StoreFormat.runLog.version)
    }

    /// Opens an existing log: its snapshot, then the journal's records after it. With `searchSpace`, refuses a
    /// log written for another search space (another hash) unless `allowDifferentSearchSpace`.
    public static func open(at path: String, searchSpace: String? = nil, allowDifferentSearchSpace: Bool = false) throws -> RunLog {
        let jPath = journalPath(for: path)
        let hasSnapshot = access(path, F_OK) == 0
        let hasJournal = access(jPath, F_OK) == 0
        guard hasSnapshot || hasJournal else {
            throw StoreError(.fileNotFound, file: path, "no run log here (neither \(path) nor \(jPath))")
        }
        var log: RunLog
        var covered = 0
        var snapshotJournal: String?
        if hasSnapshot {
            let snapshot = try Snapshot.read(path)
            log = RunLog(path: path, info: snapshot.info, snapshotExists: true, snapshotVersion: snapshot.version)
            log.trials = snapshot.trials
            log.runs = snapshot.runs
            log.snapshotTrials = snapshot.trials.count
            log.snapshotRuns = snapshot.runs.count
            covered = snapshot.journalBytes
            snapshotJournal = snapshot.journalID
            log.taskCount = snapshot.taskCount ?? log.taskCount
        } else {
            let header = try Journal.read(jPath, from: Int.max).header
            log = RunLog(path: path, info: RunInfo(header), snapshotExists: false, snapshotVersion: StoreFormat.runLog.version)
        }
        if hasJournal {
            let contents = try Journal.read(jPath, from: covered)
            if hasSnapshot && snapshotJournal != contents.header.id {
                guard contents.recordCount == 0 else {
                    throw StoreError(.corrupt, file: jPath, object: "header.id",
                                     "belongs to another run than \(path) (journal \(contents.header.id), the snapshot names \(snapshotJournal ?? "none")); move one of the two away")
                }
                log.journalIsOrphan = true   // its creation was interrupted before the snapshot named it
            } else {
                guard contents.size >= covered else {
                    throw StoreError(.corrupt, file: jPath, "holds \(contents.size) bytes of records but \(path) was made from \(covered): the journal was truncated or replaced; restore it, or move it away to keep only what \(path) holds")
                }
                log.journalID = contents.header.id
                log.journalSize = contents.size
                for record in contents.records { try log.replay(record) }
            }
        }
        for (i, t) in log.trials.enumerated() { log.index[t.key] = i }
        guard log.index.count == log.trials.count else {
            throw StoreError(.corrupt, file: path, object: "/trials", "holds a trial twice; the log is corrupt")
        }
        if let searchSpace, !allowDifferentSearchSpace {
            let expected = hash(ofSearchSpace: searchSpace)
            guard log.info.searchSpaceHash == expected else {
                throw StoreError(.wrongFormat, file: path, object: "/@search_space_hash",
                                 "the log was written for another search space (\(log.info.searchSpaceHash), this one is \(expected)); use another results folder, or allow a different search space to continue anyway")
            }
        }
        return log
    }

    /// Opens the log at `path` if there is one (checking the search space as `open` does), else creates it.
    public static func openOrCreate(at path: String, info: RunInfo, allowDifferentSearchSpace: Bool = false) throws -> RunLog {
        if exists(at: path) {
            return try open(at: path, searchSpace: info.searchSpace, allowDifferentSearchSpace: allowDifferentSearchSpace)
        }
        return try create(at: path, info: info)
    }

    private func replay(_ record: Journal.Record) throws {
        switch record {
        case .header: break
        case .trial(let t): trials.append(try TrialResult(t, file: journalPath))
        case .run(let r): runs.append(Run(r))
        case .searchSpace(let s):
            info.searchSpace = s.text
            info.searchSpaceHash = s.hash
        }
    }

    // MARK: - TrialStorage

    public func result(for key: TrialKey) -> TrialResult? { index[key].map { trials[$0] } }

    /// Every trial, ordered by key.
    public var results: [TrialResult] { trials.sorted { $0.key < $1.key } }

    /// Every trial in the order it was saved.
    public var trialsInOrder: [TrialResult] { trials }

    /// Stores a finished trial, whole or not at all: one journal record, then a snapshot when it is due.
    public func save(_ result: TrialResult) throws {
        guard index[result.key] == nil else {
            throw StoreError(.exists, file: path, object: result.key.id, "trial \(result.key.id) is logged already; a stored trial never changes")
        }
        if let problem = problem(result) { throw StoreError(.invalidArgument, file: path, object: result.key.id, problem) }
        try write(.trial(JournalTrial(result)))
        if taskCount == nil, !result.accuracy.isEmpty { taskCount = result.accuracy.count }
        index[result.key] = trials.count
        trials.append(result)
        saved += 1
        if (trials.count - snapshotTrials) * 2 >= max(snapshotTrials, 1) { try writeSnapshot() }
    }

    /// Why `r` cannot be stored in this log's columns, or nil.
    func problem(_ r: TrialResult) -> String? {
        let tasks = taskCount ?? (r.accuracy.isEmpty ? nil : r.accuracy.count)
        guard let tasks else {
            return r.curve.isEmpty && r.loss.isEmpty ? nil : "trial \(r.key.id): curve or losses without accuracies; the task count is unknown"
        }
        if !r.accuracy.isEmpty && r.accuracy.count != tasks { return "trial \(r.key.id): \(r.accuracy.count) accuracies for \(tasks) tasks" }
        if !r.loss.isEmpty && r.loss.count != tasks { return "trial \(r.key.id): \(r.loss.count) losses for \(tasks) tasks" }
        if let p = r.curve.firstIndex(where: { $0.accuracy.count != tasks || $0.trainLoss.count != tasks }) {
            return "trial \(r.key.id): curve point \(p) has \(r.curve[p].accuracy.count) accuracies and \(r.curve[p].trainLoss.count) training losses for \(tasks) tasks"
        }
        return nil
    }

    // MARK: - Runs and search spaces

    /// One invocation of a search over this log: what ran, where, for how long and how much it trained.
    public struct Run: Hashable, Sendable, Codable {
        public var command: String
        public var machine: String
        /// ISO 8601 time the invocation finished.
        public var finished: String
        public var wallSeconds: Double
        /// Trials this invocation trained (0: everything came from the log).
        public var trained: Int

        public init(command: String, machine: String, finished: String, wallSeconds: Double, trained: Int) {
            self.command = command
            self.machine = machine
            self.finished = finished
            self.wallSeconds = wallSeconds
            self.trained = trained
        }
    }

    /// Records an invocation, so that reports rewritten by a later invocation still say how long the training
    /// took and on what machine.
    public func appendRun(_ run: Run) throws {
        try write(.run(JournalRun(run)))
        runs.append(run)
    }

    /// Makes the log belong to the search space `text` from now on: for a study that changed in a way that
    /// keeps every logged trial valid (more seeds); the caller decides that.
    public func adoptSearchSpace(text: String) throws {
        let hash = Self.hash(ofSearchSpace: text)
        try write(.searchSpace(JournalSearchSpace(text: text, hash: hash)))
        info.searchSpace = text
        info.searchSpaceHash = hash
        try writeSnapshot()
    }

    // MARK: - Writing

    private func write(_ record: Journal.Record) throws {
        try openJournal()
        try journal!.append(record)
        journalSize = journal!.size
        snapshotCurrent = false
    }

    /// Opens the journal for writing, creating it (and naming it in a new snapshot) when there is none.
    private func openJournal() throws {
        guard journal == nil else { return }
        // Holding the journal's lock makes this process the log's one writer: any temporary snapshot or
        // journal beside the log was left by a writer that was killed.
        defer {
            if journal != nil {
                AtomicFile.removeTemporaries(of: path)
                AtomicFile.removeTemporaries(of: journalPath)
            }
        }
        if let _ = journalID {
            journal = try Journal.openForAppend(journalPath, validSize: journalSize)
            return
        }
        if journalIsOrphan { unlink(journalPath) }
        let id = UUID().uuidString.lowercased()
        journal = try Journal.create(journalPath, header: JournalHeader(info, id: id))
        journalID = id
        journalSize = journal!.size
        journalIsOrphan = false
        // An existing snapshot (version 1, or one whose journal was lost) must name the new journal before
        // anything is appended to it.
        if snapshotExists { try writeSnapshot() }
    }

    /// Rewrites the snapshot (`NAME.h5`) from memory, atomically, after making the journal durable.
    public func writeSnapshot() throws {
        try journal?.sync()
        try Snapshot.write(Snapshot(info: info, version: StoreFormat.runLog.version, trials: trials, runs: runs,
                                    taskCount: taskCount, journalID: journalID, journalBytes: journalSize),
                           to: path)
        snapshotExists = true
        snapshotCurrent = true
        snapshotVersion = StoreFormat.runLog.version
        snapshotTrials = trials.count
        snapshotRuns = runs.count
    }

    /// Rewrites a log of an older format version as the current one: a new journal, and a snapshot in the
    /// columnar layout that names it. Returns false (and writes nothing) when the log is current already.
    /// Takes the journal's writer lock like any write, so it is refused while a run writes the log.
    @discardableResult
    public func migrate() throws -> Bool {
        guard snapshotVersion < StoreFormat.runLog.version else { return false }
        try openJournal()
        if snapshotVersion < StoreFormat.runLog.version { try writeSnapshot() }
        try close()
        return true
    }

    /// Brings the snapshot up to date with everything saved, and releases the journal (and its writer lock).
    public func close() throws {
        if journal != nil && !snapshotCurrent { try writeSnapshot() }
        try journal?.close()
        journal = nil
    }

    deinit { try? journal?.close() }
}

// MARK: - Journal records ↔ trials

extension JournalTrial {
    init(_ r: TrialResult) {
        self.init(mask: r.key.mask.description, seed: r.key.seed, steps: r.key.steps, state: r.state.rawValue,
                  params: JournalCounts(shared: r.counts.shared, specific: r.counts.specific, heads: r.counts.heads),
                  accuracy: r.accuracy, loss: r.loss,
                  curve: r.curve.map { JournalCurvePoint(step: $0.step, train_loss: $0.trainLoss, accuracy: $0.accuracy) },
                  steps_trained: r.stepsTrained, seconds: r.seconds, message: r.message)
    }
}

extension TrialResult {
    init(_ t: JournalTrial, file: String) throws {
        let mask: SharingMask
        do { mask = try SharingMask(parsing: t.mask) } catch {
            throw StoreError(.corrupt, file: file, object: "trial \(t.mask)", "not a sharing mask: \(error)")
        }
        guard let state = TrialState(rawValue: t.state) else {
            throw StoreError(.corrupt, file: file, object: "trial \(t.mask).seed\(t.seed)", "unknown state '\(t.state)'; expected done, diverged or failed")
        }
        self.init(key: TrialKey(mask: mask, seed: t.seed, steps: t.steps), state: state,
                  counts: ParameterCounts(shared: t.params.shared, specific: t.params.specific, heads: t.params.heads),
                  accuracy: t.accuracy, loss: t.loss,
                  curve: t.curve.map { CurvePoint(step: $0.step, trainLoss: $0.train_loss, accuracy: $0.accuracy) },
                  stepsTrained: t.steps_trained, seconds: t.seconds, message: t.message)
    }
}

extension JournalRun {
    init(_ r: RunLog.Run) {
        self.init(command: r.command, machine: r.machine, finished: r.finished, wall_seconds: r.wallSeconds, trained: r.trained)
    }
}

extension RunLog.Run {
    init(_ r: JournalRun) {
        self.init(command: r.command, machine: r.machine, finished: r.finished, wallSeconds: r.wall_seconds, trained: r.trained)
    }
}

extension JournalHeader {
    init(_ info: RunInfo, id: String) {
        self.init(id: id, created: info.created, search_space: info.searchSpace, search_space_hash: info.searchSpaceHash,
                  tool_version: info.toolVersion, seed: info.seed, study: info.study, model: info.model,
                  task_names: info.taskNames, all_shared_params: info.allSharedParams,
                  search_space_file: info.searchSpaceFile, shard: info.shard, attributes: info.attributes)
    }
}

extension RunInfo {
    init(_ h: JournalHeader) {
        self.init(searchSpace: h.search_space, toolVersion: h.tool_version, seed: h.seed, study: h.study, model: h.model,
                  taskNames: h.task_names, allSharedParams: h.all_shared_params, searchSpaceFile: h.search_space_file,
                  shard: h.shard, attributes: h.attributes, created: h.created)
        searchSpaceHash = h.search_space_hash
    }
}
