import Foundation
import LayerSplitEngine

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
    /// Other string attributes of the root group.
    public var attributes: [String: String]
}

/// A search's run log (`log.h5`): the run's search space, its hash, the tool version and seed as root
/// attributes, and one group per candidate under `/candidates` (layout: docs/FORMATS.md).
///
/// **Crash safety.** The file at `path` is only ever replaced whole: `append` copies it to a temporary file in
/// the same folder, adds the candidate there, closes and fsyncs it, and renames it over `path` (then fsyncs
/// the folder). A process killed at any moment therefore leaves a log that opens and holds every candidate
/// appended before the kill; at worst a temporary file is left, which the next append removes. Appends from
/// several processes are serialised by a lock file (`.log.h5.lock`). Cost: one copy of the log per
/// candidate (logs are small: a few KB per candidate).
///
/// The object holds no HDF5 handle: every call opens the file and closes it again.
public final class RunLog: Sendable {
    public let path: String
    public let info: RunInfo

    /// Run logs use HDF5 1.8's object formats: compact groups make a candidate about 4x smaller, and every
    /// h5py and h5dump in use reads them.
    static let compatibility = HDF5File.Compatibility.hdf5_1_10

    private init(path: String, info: RunInfo) {
        self.path = path
        self.info = info
    }

    /// A stable identifier of a search space's text: FNV-1a (64-bit) of its UTF-8 bytes, as `fnv1a64:<hex>`.
    public static func hash(ofSearchSpace text: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        let hex = String(h, radix: 16)
        return "fnv1a64:" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Creates a new, empty log. Throws `.exists` if there is a file at `path`.
    public static func create(at path: String, searchSpace: String, seed: UInt64, toolVersion: String,
                              attributes: [String: String] = [:]) throws -> RunLog {
        if let clash = attributes.keys.first(where: StoreFormat.runLog.reservedAttributes.contains) {
            throw StoreError(.invalidArgument, file: path, object: "/@" + clash, "is written by LayerSplit itself; use another attribute name")
        }
        guard access(path, F_OK) != 0 else {
            throw StoreError(.exists, file: path, "a run log exists already; open it to continue, or choose another results folder")
        }
        try AtomicFile.replace(path) { temp in
            let file = try HDF5File(creating: temp, overwrite: true, compatibility: RunLog.compatibility)
            defer { try? file.close() }
            try StoreFormat.runLog.stamp(file)
            try file.setAttribute("search_space", searchSpace)
            try file.setAttribute("search_space_hash", hash(ofSearchSpace: searchSpace))
            try file.setAttribute("tool_version", toolVersion)
            try file.setAttribute("seed", seed)
            for (k, v) in attributes.sorted(by: { $0.key < $1.key }) { try file.setAttribute(k, v) }
            try file.createGroup("/candidates")
            try file.close()
        }
        return try open(at: path)
    }

    /// Opens an existing log. With `searchSpace`, refuses a log written for another search space (another
    /// hash) unless `allowDifferentSearchSpace`.
    public static func open(at path: String, searchSpace: String? = nil, allowDifferentSearchSpace: Bool = false) throws -> RunLog {
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        let info = try readInfo(file)
        if let searchSpace, !allowDifferentSearchSpace {
            let expected = hash(ofSearchSpace: searchSpace)
            guard info.searchSpaceHash == expected else {
                throw StoreError(.wrongFormat, file: path, object: "/@search_space_hash",
                                 "the log was written for another search space (\(info.searchSpaceHash), this one is \(expected)); use another results folder, or allow a different search space to continue anyway")
            }
        }
        return RunLog(path: path, info: info)
    }

    /// Opens the log at `path` if there is one (checking the search space as `open` does), else creates it.
    public static func openOrCreate(at path: String, searchSpace: String, seed: UInt64, toolVersion: String,
                                    attributes: [String: String] = [:], allowDifferentSearchSpace: Bool = false) throws -> RunLog {
        if access(path, F_OK) == 0 {
            return try open(at: path, searchSpace: searchSpace, allowDifferentSearchSpace: allowDifferentSearchSpace)
        }
        return try create(at: path, searchSpace: searchSpace, seed: seed, toolVersion: toolVersion, attributes: attributes)
    }

    /// Adds a candidate, whole or not at all (see the type's notes). Throws `.exists` if its id is logged.
    public func append(_ record: CandidateRecord) throws {
        if let problem = record.problem() {
            throw StoreError(.invalidArgument, file: path, object: "/candidates", problem)
        }
        try Self.rewrite(path) { file in
            let group = "/candidates/" + RunLog.groupName(record.id)
            guard !file.exists(group) else {
                throw StoreError(.exists, file: path, object: group, "candidate '\(record.id)' is logged already; ids must be unique")
            }
            let order = try file.children(of: "/candidates").count
            try RunLog.write(record, order: order, to: group, in: file)
        }
    }

    /// Changes the log at `path` whole or not at all (see the type's notes): under the lock, `change` edits a
    /// copy, which then replaces the log.
    static func rewrite(_ path: String, _ change: (HDF5File) throws -> Void) throws {
        try AtomicFile.withExclusiveLock(path) {
            AtomicFile.removeStaleTemporaries(of: path)
            try AtomicFile.replace(path, copyingExisting: true) { temp in
                let file = try HDF5File(opening: temp, mode: .readWrite, compatibility: RunLog.compatibility)
                defer { try? file.close() }
                try change(file)
                try file.close()
            }
        }
    }

    /// Makes the log at `path` belong to the search space `text` from now on (its `search_space` and hash
    /// attributes), whole or not at all. For a study that changed in a way that keeps every logged trial valid
    /// (more seeds); the caller decides that.
    public static func adoptSearchSpace(at path: String, text: String) throws {
        try rewrite(path) { file in
            try file.setAttribute("search_space", text)
            try file.setAttribute("search_space_hash", hash(ofSearchSpace: text))
        }
    }

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

    /// Records an invocation under `/runs`, whole or not at all (as `append`), so that reports rewritten by a
    /// later invocation still say how long the training took and on what machine.
    public func appendRun(_ run: Run) throws {
        try Self.rewrite(path) { file in
            if !file.exists("/runs") { try file.createGroup("/runs") }
            let g = "/runs/" + String(format: "r%04d", try file.children(of: "/runs").count)
            try file.createGroup(g)
            try file.setAttribute("command", run.command, on: g)
            try file.setAttribute("machine", run.machine, on: g)
            try file.setAttribute("finished", run.finished, on: g)
            try file.setAttribute("wall_seconds", run.wallSeconds, on: g)
            try file.setAttribute("trained", Int64(run.trained), on: g)
        }
    }

    /// The invocations recorded in the log at `path`, oldest first (none in logs written before run records were added).
    public static func runs(at path: String) throws -> [Run] {
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        guard file.exists("/runs") else { return [] }
        return try file.children(of: "/runs").sorted().map { name in
            let g = "/runs/" + name
            return Run(command: try file.stringAttribute("command", of: g) ?? "",
                       machine: try file.stringAttribute("machine", of: g) ?? "",
                       finished: try file.stringAttribute("finished", of: g) ?? "",
                       wallSeconds: try file.attribute(Double.self, "wall_seconds", of: g) ?? 0,
                       trained: Int(try file.attribute(Int64.self, "trained", of: g) ?? 0))
        }
    }

    /// Every candidate, in the order they were appended.
    public func records() throws -> [CandidateRecord] {
        try RunLog.records(at: path)
    }

    /// The candidates of any run log, in append order: what merging several logs reads.
    public static func records(at path: String) throws -> [CandidateRecord] {
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        _ = try readInfo(file)
        var out: [(Int64, CandidateRecord)] = []
        for name in try file.children(of: "/candidates") {
            let group = "/candidates/" + name
            out.append((try file.attribute(Int64.self, "order", of: group) ?? Int64(out.count), try read(group, in: file)))
        }
        return out.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The run attributes of any run log.
    public static func readInfo(at path: String) throws -> RunInfo {
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        return try readInfo(file)
    }

    // MARK: - Layout

    /// The group name of a candidate id: the id, with `%`, `/` and a leading `.` percent-encoded.
    static func groupName(_ id: String) -> String {
        var out = ""
        for (i, ch) in id.enumerated() {
            switch ch {
            case "%": out += "%25"
            case "/": out += "%2F"
            case "." where i == 0: out += "%2E"
            default: out.append(ch)
            }
        }
        return out
    }

    static func readInfo(_ file: HDF5File) throws -> RunInfo {
        let format = try StoreFormat.of(file)
        guard format == .runLog else {
            throw StoreError(.wrongFormat, file: file.path, object: "/@format", "is a \(format.rawValue) file, not a run log")
        }
        func required(_ name: String) throws -> String {
            guard let v = try file.stringAttribute(name) else {
                throw StoreError(.missing, file: file.path, object: "/@" + name, "missing; the run log is incomplete")
            }
            return v
        }
        var extra: [String: String] = [:]
        for name in try file.attributeNames() where !StoreFormat.runLog.reservedAttributes.contains(name) {
            if let v = try? file.stringAttribute(name) { extra[name] = v }
        }
        guard file.exists("/candidates") else {
            throw StoreError(.missing, file: file.path, object: "/candidates", "missing; the run log is incomplete")
        }
        return RunInfo(searchSpace: try required("search_space"), searchSpaceHash: try required("search_space_hash"),
                       toolVersion: try required("tool_version"), seed: try file.attribute(UInt64.self, "seed") ?? 0,
                       created: try file.stringAttribute("created") ?? "", attributes: extra)
    }

    static func write(_ r: CandidateRecord, order: Int, to g: String, in file: HDF5File) throws {
        try file.createGroup(g)
        try file.setAttribute("id", r.id, on: g)
        try file.setAttribute("order", Int64(order), on: g)
        try file.setAttribute("mask", r.mask, on: g)
        try file.setAttribute("seed", r.seed, on: g)
        try file.setAttribute("trial_key", r.trialKey, on: g)
        try file.setAttribute("status", r.status.rawValue, on: g)
        try file.setAttribute("wall_seconds", r.wallSeconds, on: g)
        try file.setAttribute("mean_accuracy", r.meanAccuracy, on: g)
        try file.setAttribute("params_stored", Int64(r.parameterCounts.stored), on: g)
        try file.setAttribute("params_shared", Int64(r.parameterCounts.shared), on: g)
        try file.setAttribute("params_specific", Int64(r.parameterCounts.specific), on: g)
        try file.setAttribute("params_heads", Int64(r.parameterCounts.heads), on: g)
        for (k, v) in r.attributes.sorted(by: { $0.key < $1.key }) { try file.setAttribute("extra." + k, v, on: g) }
        let tasks = r.taskCount
        try file.createExtensible(Int64.self, at: g + "/curve_steps", chunkRows: 16, gzip: nil)
        try file.append(r.curveSteps.map { Int64($0) }, to: g + "/curve_steps")
        try file.createExtensible(Double.self, at: g + "/loss", chunkRows: 16, gzip: nil)
        try file.append(r.lossCurve, to: g + "/loss")
        try file.createExtensible(Double.self, at: g + "/accuracy", rowShape: [tasks], chunkRows: 16, gzip: nil)
        try file.append(r.accuracyCurve.flatMap { $0 }, to: g + "/accuracy")
        try file.write(r.finalAccuracy, to: g + "/final_accuracy", storage: .contiguous)
        try file.write(r.finalLoss, to: g + "/final_loss", storage: .contiguous)
    }

    static func read(_ g: String, in file: HDF5File) throws -> CandidateRecord {
        func text(_ name: String) throws -> String {
            guard let v = try file.stringAttribute(name, of: g) else {
                throw StoreError(.missing, file: file.path, object: g + "@" + name, "missing; the candidate is incomplete")
            }
            return v
        }
        func int(_ name: String) throws -> Int { Int(try file.attribute(Int64.self, name, of: g) ?? 0) }
        let statusText = try text("status")
        guard let status = CandidateRecord.Status(rawValue: statusText) else {
            throw StoreError(.wrongFormat, file: file.path, object: g + "@status", "unknown status '\(statusText)'; expected done, diverged or failed")
        }
        var extra: [String: String] = [:]
        for name in try file.attributeNames(of: g) where name.hasPrefix("extra.") {
            extra[String(name.dropFirst(6))] = try file.stringAttribute(name, of: g)
        }
        let accuracy = try file.read(Double.self, g + "/accuracy")
        let tasks = accuracy.shape.count == 2 ? accuracy.shape[1] : 0
        let rows = tasks == 0 ? Array(repeating: [Double](), count: accuracy.shape.first ?? 0)
            : stride(from: 0, to: accuracy.values.count, by: tasks).map { Array(accuracy.values[$0 ..< $0 + tasks]) }
        return CandidateRecord(
            id: try text("id"), mask: try text("mask"), seed: try file.attribute(UInt64.self, "seed", of: g) ?? 0,
            trialKey: try text("trial_key"),
            parameterCounts: ParameterCounts(shared: try int("params_shared"), specific: try int("params_specific"),
                                             heads: try int("params_heads")),
            curveSteps: try file.readInt64(g + "/curve_steps").values.map { Int($0) },
            lossCurve: try file.read(Double.self, g + "/loss").values,
            accuracyCurve: rows,
            finalAccuracy: try file.read(Double.self, g + "/final_accuracy").values,
            finalLoss: try file.read(Double.self, g + "/final_loss").values,
            meanAccuracy: try file.attribute(Double.self, "mean_accuracy", of: g) ?? .nan,
            status: status, wallSeconds: try file.attribute(Double.self, "wall_seconds", of: g) ?? 0,
            attributes: extra)
    }
}
