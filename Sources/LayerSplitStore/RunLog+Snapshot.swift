import Foundation
import LayerSplitEngine
import LayerSplitSearch

/// The HDF5 file of a run log (`log.h5`), read and written whole.
///
/// Version 2 stores trials as columns, one row per trial in the order they were saved, so that a whole run is
/// a handful of datasets (h5py and pandas read a column in one call) and rewriting it costs a few sequential
/// writes rather than one group per trial. Layout (docs/FORMATS.md): `/tasks`; `/trials/<field>` `[N]` or
/// `[N, T]`; `/curves/<field>` `[M]` or `[M, T]` with `/curves/trial` the row of the trial each point
/// belongs to; `/runs/<field>` `[R]`. Version 1 (one group per candidate, `/candidates/<id>`) is read by
/// `readVersion1`.
struct Snapshot {
    var info: RunInfo
    var version: Int64
    var trials: [TrialResult]
    var runs: [RunLog.Run]
    var taskCount: Int?
    /// The journal this snapshot was made from and how many of its bytes it holds (nil: none).
    var journalID: String?
    var journalBytes: Int

    /// The oldest file format: every HDF5 reads it, and a columnar file of a few contiguous datasets gains
    /// nothing from newer object formats. It is also the one whose in-memory image (`HDF5File.writeAtomically`)
    /// is a valid file: the 1.8 and 1.10 superblocks carry a checksum that is only final at close, so their
    /// images taken before close fail to open ("incorrect metadata checksum").
    static let compatibility = HDF5File.Compatibility.earliest

    /// Root attributes written by LayerSplit itself; the free attributes of `RunInfo` may not use them.
    static let reserved: Set<String> = StoreFormat.runLog.reservedAttributes.union(
        ["study", "model", "all_shared_params", "search_space_file", "shard", "journal_id", "journal_bytes"])

    // MARK: - Writing

    static func write(_ s: Snapshot, to path: String) throws {
        if let clash = s.info.attributes.keys.first(where: reserved.contains) {
            throw StoreError(.invalidArgument, file: path, object: "/@" + clash, "is written by LayerSplit itself; use another attribute name")
        }
        try HDF5File.writeAtomically(to: path, compatibility: compatibility) { try write(s, into: $0) }
    }

    private static func write(_ s: Snapshot, into file: HDF5File) throws {
        let info = s.info
        try StoreFormat.runLog.stamp(file)
        try file.setAttribute("created", info.created)
        try file.setAttribute("search_space", info.searchSpace)
        try file.setAttribute("search_space_hash", info.searchSpaceHash)
        try file.setAttribute("tool_version", info.toolVersion)
        try file.setAttribute("seed", info.seed)
        try file.setAttribute("study", info.study)
        try file.setAttribute("model", info.model)
        try file.setAttribute("all_shared_params", Int64(info.allSharedParams))
        try file.setAttribute("search_space_file", info.searchSpaceFile)
        try file.setAttribute("shard", info.shard)
        try file.setAttribute("journal_id", s.journalID ?? "")
        try file.setAttribute("journal_bytes", Int64(s.journalBytes))
        for (k, v) in info.attributes.sorted(by: { $0.key < $1.key }) { try file.setAttribute(k, v) }
        try file.writeStrings(info.taskNames, to: "/tasks")

        let t = s.taskCount ?? 0
        let n = s.trials.count
        try file.createGroup("/trials")
        try file.writeStrings(s.trials.map { $0.key.mask.description }, to: "/trials/mask")
        try file.write(s.trials.map(\.key.seed), to: "/trials/seed")
        try file.write(s.trials.map { Int64($0.key.steps) }, to: "/trials/steps")
        try file.write(s.trials.map { Int64($0.stepsTrained) }, to: "/trials/steps_trained")
        try file.writeStrings(s.trials.map(\.state.rawValue), to: "/trials/state")
        try file.write(s.trials.map { Int64($0.counts.stored) }, to: "/trials/params_stored")
        try file.write(s.trials.map { Int64($0.counts.shared) }, to: "/trials/params_shared")
        try file.write(s.trials.map { Int64($0.counts.specific) }, to: "/trials/params_specific")
        try file.write(s.trials.map { Int64($0.counts.heads) }, to: "/trials/params_heads")
        try file.write(s.trials.map(\.seconds), to: "/trials/seconds")
        try file.write(s.trials.map(\.meanAccuracy), to: "/trials/mean_accuracy")
        try file.write(s.trials.flatMap { $0.accuracy.isEmpty ? Array(repeating: Double.nan, count: t) : $0.accuracy },
                       shape: [n, t], to: "/trials/accuracy")
        try file.write(s.trials.flatMap { $0.loss.isEmpty ? Array(repeating: Float.nan, count: t) : $0.loss },
                       shape: [n, t], to: "/trials/loss")
        try file.writeStrings(s.trials.map(\.message), to: "/trials/message")

        var owner: [Int64] = [], step: [Int64] = [], trainLoss: [Float] = [], accuracy: [Double] = []
        for (row, trial) in s.trials.enumerated() {
            for p in trial.curve {
                owner.append(Int64(row))
                step.append(Int64(p.step))
                trainLoss += p.trainLoss
                accuracy += p.accuracy
            }
        }
        try file.createGroup("/curves")
        try file.write(owner, to: "/curves/trial")
        try file.write(step, to: "/curves/step")
        try file.write(trainLoss, shape: [owner.count, t], to: "/curves/train_loss")
        try file.write(accuracy, shape: [owner.count, t], to: "/curves/accuracy")

        try file.createGroup("/runs")
        try file.writeStrings(s.runs.map(\.command), to: "/runs/command")
        try file.writeStrings(s.runs.map(\.machine), to: "/runs/machine")
        try file.writeStrings(s.runs.map(\.finished), to: "/runs/finished")
        try file.write(s.runs.map(\.wallSeconds), to: "/runs/wall_seconds")
        try file.write(s.runs.map { Int64($0.trained) }, to: "/runs/trained")
    }

    // MARK: - Reading

    static func read(_ path: String) throws -> Snapshot {
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        let format = try StoreFormat.of(file)
        guard format == .runLog else {
            throw StoreError(.wrongFormat, file: path, object: "/@format", "is a \(format.rawValue) file, not a run log")
        }
        let version = try StoreFormat.version(of: file)
        return version == 1 ? try readVersion1(file) : try readVersion2(file)
    }

    static func required(_ file: HDF5File, _ name: String) throws -> String {
        guard let v = try file.stringAttribute(name) else {
            throw StoreError(.missing, file: file.path, object: "/@" + name, "missing; the run log is incomplete")
        }
        return v
    }

    static func freeAttributes(_ file: HDF5File) throws -> [String: String] {
        var out: [String: String] = [:]
        for name in try file.attributeNames() where !reserved.contains(name) {
            out[name] = try file.stringAttribute(name)
        }
        return out
    }

    private static func readVersion2(_ file: HDF5File) throws -> Snapshot {
        func int(_ name: String) throws -> Int { Int(try file.attribute(Int64.self, name) ?? 0) }
        var info = RunInfo(searchSpace: try required(file, "search_space"), toolVersion: try required(file, "tool_version"),
                           seed: try file.attribute(UInt64.self, "seed") ?? 0, study: try file.stringAttribute("study") ?? "",
                           model: try file.stringAttribute("model") ?? "", taskNames: try file.readStrings("/tasks"),
                           allSharedParams: try int("all_shared_params"),
                           searchSpaceFile: try file.stringAttribute("search_space_file") ?? "",
                           shard: try file.stringAttribute("shard") ?? "", attributes: try freeAttributes(file),
                           created: try file.stringAttribute("created") ?? "")
        info.searchSpaceHash = try required(file, "search_space_hash")

        let p = file.path
        let masks = try file.readStrings("/trials/mask")
        let n = masks.count
        func column<T: HDF5Scalar>(_ type: T.Type, _ name: String, width: Int? = nil) throws -> [T] {
            let a = try file.read(T.self, name)
            let expected = width.map { [n, $0] } ?? [n]
            guard a.shape == expected || (width != nil && n == 0 && a.shape.first == 0) else {
                throw StoreError(.shapeMismatch, file: p, object: name, "has shape \(a.shape), expected \(expected)")
            }
            return a.values
        }
        let accuracyShape = try file.info(of: "/trials/accuracy").shape
        let t = accuracyShape.count == 2 ? accuracyShape[1] : 0
        let seeds = try column(UInt64.self, "/trials/seed"), steps = try column(Int64.self, "/trials/steps")
        let trained = try column(Int64.self, "/trials/steps_trained"), states = try file.readStrings("/trials/state")
        let shared = try column(Int64.self, "/trials/params_shared"), specific = try column(Int64.self, "/trials/params_specific")
        let heads = try column(Int64.self, "/trials/params_heads"), seconds = try column(Double.self, "/trials/seconds")
        let accuracy = try column(Double.self, "/trials/accuracy", width: t), loss = try column(Float.self, "/trials/loss", width: t)
        let messages = try file.readStrings("/trials/message")
        guard states.count == n, messages.count == n else {
            throw StoreError(.shapeMismatch, file: p, object: "/trials", "the columns have different lengths")
        }
        let owner = try file.read(Int64.self, "/curves/trial").values
        let m = owner.count
        let curveStep = try file.read(Int64.self, "/curves/step").values
        let curveLoss = try file.read(Float.self, "/curves/train_loss").values
        let curveAccuracy = try file.read(Double.self, "/curves/accuracy").values
        guard curveStep.count == m, curveLoss.count == m * t, curveAccuracy.count == m * t else {
            throw StoreError(.shapeMismatch, file: p, object: "/curves", "the columns have different lengths")
        }
        var curves = [[CurvePoint]](repeating: [], count: n)
        for i in 0..<m {
            let row = Int(owner[i])
            guard (0..<n).contains(row) else { throw StoreError(.corrupt, file: p, object: "/curves/trial", "row \(i) names trial \(row) of \(n)") }
            curves[row].append(CurvePoint(step: Int(curveStep[i]), trainLoss: Array(curveLoss[(i * t)..<((i + 1) * t)]),
                                          accuracy: Array(curveAccuracy[(i * t)..<((i + 1) * t)])))
        }
        var trials: [TrialResult] = []
        trials.reserveCapacity(n)
        for i in 0..<n {
            let mask: SharingMask
            do { mask = try SharingMask(parsing: masks[i]) } catch {
                throw StoreError(.corrupt, file: p, object: "/trials/mask[\(i)]", "'\(masks[i])' is not a sharing mask")
            }
            guard let state = TrialState(rawValue: states[i]) else {
                throw StoreError(.corrupt, file: p, object: "/trials/state[\(i)]", "unknown state '\(states[i])'; expected done, diverged or failed")
            }
            let acc = Array(accuracy[(i * t)..<((i + 1) * t)]), lo = Array(loss[(i * t)..<((i + 1) * t)])
            trials.append(TrialResult(
                key: TrialKey(mask: mask, seed: seeds[i], steps: Int(steps[i])), state: state,
                counts: ParameterCounts(shared: Int(shared[i]), specific: Int(specific[i]), heads: Int(heads[i])),
                accuracy: acc.allSatisfy(\.isNaN) ? [] : acc, loss: lo.allSatisfy(\.isNaN) ? [] : lo, curve: curves[i],
                stepsTrained: Int(trained[i]), seconds: seconds[i], message: messages[i]))
        }
        let commands = try file.readStrings("/runs/command")
        let machines = try file.readStrings("/runs/machine"), finished = try file.readStrings("/runs/finished")
        let wall = try file.read(Double.self, "/runs/wall_seconds").values, runTrained = try file.read(Int64.self, "/runs/trained").values
        guard [machines.count, finished.count, wall.count, runTrained.count].allSatisfy({ $0 == commands.count }) else {
            throw StoreError(.shapeMismatch, file: p, object: "/runs", "the columns have different lengths")
        }
        let runs = commands.indices.map {
            RunLog.Run(command: commands[$0], machine: machines[$0], finished: finished[$0], wallSeconds: wall[$0], trained: Int(runTrained[$0]))
        }
        let id = try file.stringAttribute("journal_id") ?? ""
        return Snapshot(info: info, version: 2, trials: trials, runs: runs,
                        taskCount: t > 0 ? t : (info.taskNames.isEmpty ? nil : info.taskNames.count),
                        journalID: id.isEmpty ? nil : id, journalBytes: Int(try file.attribute(Int64.self, "journal_bytes") ?? 0))
    }
}
