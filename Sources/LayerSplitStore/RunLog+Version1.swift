import Foundation
import LayerSplitEngine
import LayerSplitSearch

/// Reading version-1 run logs (one group per candidate, `/candidates/<id>`; every study published before
/// run store v2), so that they still open and `layersplit migrate` can rewrite them as version 2.
///
/// Two things of version 1 do not carry over exactly, and the migrated file says so
/// (`migrated_from_version` = 1): its training-loss curve held the *sum* over tasks, so the per-task
/// training losses of migrated curves are NaN; and numbers it kept as strings (`extra.steps`,
/// `all_shared_params`, `task_names` as JSON text) become numbers and a list.
extension Snapshot {
    static func readVersion1(_ file: HDF5File) throws -> Snapshot {
        let p = file.path
        guard file.exists("/candidates") else {
            throw StoreError(.missing, file: p, object: "/candidates", "missing; the run log is incomplete")
        }
        var strings: [String: String] = [:]
        for name in try file.attributeNames() where !StoreFormat.runLog.reservedAttributes.contains(name) {
            strings[name] = try file.stringAttribute(name)
        }
        func take(_ name: String) -> String { strings.removeValue(forKey: name) ?? "" }
        let taskNamesText = take("task_names")
        let taskNames = taskNamesText.isEmpty ? [] : (try? JSONDecoder().decode([String].self, from: Data(taskNamesText.utf8))) ?? []
        let allShared = take("all_shared_params")
        var info = RunInfo(searchSpace: try required(file, "search_space"), toolVersion: try required(file, "tool_version"),
                           seed: try file.attribute(UInt64.self, "seed") ?? 0, study: take("study"), model: take("model"),
                           taskNames: taskNames, allSharedParams: Int(allShared) ?? 0, searchSpaceFile: take("search_space_file"),
                           shard: take("shard"), attributes: [:], created: try file.stringAttribute("created") ?? "")
        info.searchSpaceHash = try required(file, "search_space_hash")
        info.attributes = strings.merging(["migrated_from_version": "1"]) { a, _ in a }

        var ordered: [(Int64, TrialResult)] = []
        for name in try file.children(of: "/candidates") {
            let g = "/candidates/" + name
            let order = try file.attribute(Int64.self, "order", of: g) ?? Int64(ordered.count)
            ordered.append((order, try trialVersion1(g, in: file)))
        }
        let trials = ordered.sorted { $0.0 < $1.0 }.map(\.1)

        var runs: [RunLog.Run] = []
        if file.exists("/runs") {
            for name in try file.children(of: "/runs").sorted() {
                let g = "/runs/" + name
                runs.append(RunLog.Run(command: try file.stringAttribute("command", of: g) ?? "",
                                       machine: try file.stringAttribute("machine", of: g) ?? "",
                                       finished: try file.stringAttribute("finished", of: g) ?? "",
                                       wallSeconds: try file.attribute(Double.self, "wall_seconds", of: g) ?? 0,
                                       trained: Int(try file.attribute(Int64.self, "trained", of: g) ?? 0)))
            }
        }
        let t = trials.first { !$0.accuracy.isEmpty }?.accuracy.count ?? (taskNames.isEmpty ? nil : taskNames.count)
        return Snapshot(info: info, version: 1, trials: trials, runs: runs, taskCount: t, journalID: nil, journalBytes: 0)
    }

    /// One version-1 candidate as a trial. Every candidate a study wrote has `extra.steps`; one without it was
    /// not written by a search, and is an error rather than skipped.
    private static func trialVersion1(_ g: String, in file: HDF5File) throws -> TrialResult {
        let p = file.path
        func text(_ name: String) throws -> String {
            guard let v = try file.stringAttribute(name, of: g) else {
                throw StoreError(.missing, file: p, object: g + "@" + name, "missing; the candidate is incomplete")
            }
            return v
        }
        func int(_ name: String) throws -> Int { Int(try file.attribute(Int64.self, name, of: g) ?? 0) }
        guard let stepsText = try file.stringAttribute("extra.steps", of: g), let steps = Int(stepsText) else {
            throw StoreError(.missing, file: p, object: g + "@extra.steps",
                             "missing or not a number: this candidate was not written by a LayerSplit search, so it is not a trial")
        }
        let maskText = try text("mask")
        let mask: SharingMask
        do { mask = try SharingMask(parsing: maskText) } catch {
            throw StoreError(.corrupt, file: p, object: g + "@mask", "'\(maskText)' is not a sharing mask")
        }
        let statusText = try text("status")
        guard let state = TrialState(rawValue: statusText) else {
            throw StoreError(.wrongFormat, file: p, object: g + "@status", "unknown status '\(statusText)'; expected done, diverged or failed")
        }
        let accuracy = try file.read(Double.self, g + "/accuracy")
        let tasks = accuracy.shape.count == 2 ? accuracy.shape[1] : 0
        let rows = tasks == 0 ? Array(repeating: [Double](), count: accuracy.shape.first ?? 0)
            : stride(from: 0, to: accuracy.values.count, by: tasks).map { Array(accuracy.values[$0 ..< $0 + tasks]) }
        let curveSteps = try file.readInt64(g + "/curve_steps").values
        guard curveSteps.count == rows.count else {
            throw StoreError(.shapeMismatch, file: p, object: g + "/curve_steps", "\(curveSteps.count) points, but \(rows.count) accuracy rows")
        }
        let curve = zip(curveSteps, rows).map { step, acc in
            CurvePoint(step: Int(step), trainLoss: Array(repeating: .nan, count: acc.count), accuracy: acc)
        }
        let trainedText = try file.stringAttribute("extra.steps_trained", of: g)
        return TrialResult(
            key: TrialKey(mask: mask, seed: try file.attribute(UInt64.self, "seed", of: g) ?? 0, steps: steps), state: state,
            counts: ParameterCounts(shared: try int("params_shared"), specific: try int("params_specific"), heads: try int("params_heads")),
            accuracy: try file.read(Double.self, g + "/final_accuracy").values,
            loss: try file.read(Double.self, g + "/final_loss").values.map(Float.init), curve: curve,
            stepsTrained: trainedText.flatMap { Int($0) } ?? steps,
            seconds: try file.attribute(Double.self, "wall_seconds", of: g) ?? 0,
            message: try file.stringAttribute("extra.error", of: g) ?? "")
    }
}
