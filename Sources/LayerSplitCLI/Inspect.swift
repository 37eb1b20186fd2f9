import ArgumentParser
import Foundation
import LayerSplitEngine
import LayerSplitSearch
import LayerSplitStore

extension LayerSplitCommand {
    /// Prints what a weights file, checkpoint or run log holds (any other HDF5 file as a tree).
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what a weights file, checkpoint or run log (.h5) holds.")

        @Argument(help: "The .h5 file.")
        var file: String

        @Flag(help: "List every dataset with its shape, type and storage.")
        var datasets = false

        func run() throws {
            let h5 = try HDF5File(opening: file)
            defer { try? h5.close() }
            let format = (try? h5.stringAttribute("format")).flatMap { $0 }.flatMap(StoreFormat.init(rawValue:))
            switch format {
            case .weights?, .checkpoint?: try printWeights(h5)
            case .runLog?: try printRunLog()
            case nil: print("\(file): HDF5 file (not written by LayerSplit)")
            }
            if datasets || format == nil { try printTree(h5) }
        }

        private func printWeights(_ h5: HDF5File) throws {
            let info = try WeightsFile.info(file)
            let kind = info.format == .checkpoint ? "checkpoint" : "weights"
            let attrs = info.attributes
            let tool = attrs["tool_version"].map { $0.first?.isNumber == true ? "layersplit \($0)" : $0 }
            print("\(file): LayerSplit \(kind)" + (tool.map { ", written by \($0)" } ?? "")
                  + (attrs["created"].map { " on \($0)" } ?? ""))
            print("model: \(info.spec)")
            let count = { (state: SharingState) in info.mask.states.filter { $0 == state }.count }
            print("mask:  \(info.mask) (\(count(.shared)) shared, \(count(.specific)) task-specific"
                  + (count(.adapter) > 0 ? ", \(count(.adapter)) adapter" : "") + " units; \(info.spec.taskCount) tasks)")
            // One line per unit: its copies, parameters and tensors.
            var rows: [[String]] = [["unit", "copies", "floats", "tensors"]]
            var total = 0
            let groups = Dictionary(grouping: info.keys) { String($0.split(separator: "/")[0]) }
            for unit in groups.keys.sorted(by: { ($0 == "head" ? "~" : $0) < ($1 == "head" ? "~" : $1) }) {
                let keys = groups[unit]!.sorted()
                var floats = 0
                var names: [String] = []
                var vectors = 0
                var copies = Set<String>()
                for key in keys {
                    let shape = try h5.info(of: WeightsFile.group + "/" + key).shape
                    floats += shape.reduce(1, *)
                    let parts = key.split(separator: "/").map(String.init)
                    if parts.count == 3 { copies.insert(parts[1]) }
                    guard parts.count == 2 || parts[1] == "t0" else { continue }   // one copy describes them all
                    if shape.count >= 2 { names.append("\(parts.last!) \(shape)") } else { vectors += 1 }
                }
                if vectors > 0 { names.append("+\(vectors) vectors") }
                total += floats
                // uNN is unit NN − 1 of the mask: an adapter unit's per-task tensors are adapters, not copies.
                let state = Int(unit.dropFirst()).flatMap { $0 >= 1 && $0 <= info.mask.count ? info.mask[$0 - 1] : nil }
                let copyText = unit == "head" ? "\(copies.count) tasks"
                    : state == .adapter ? "shared + \(copies.count) adapters (A)"
                    : copies.isEmpty ? "shared" : "\(copies.count) (T)"
                rows.append([unit, copyText, floats.formatted(), names.joined(separator: ", ")])
            }
            printTable(rows)
            print("total: \(info.keys.count) tensors, \(total.formatted()) floats (parameters and BatchNorm statistics), PyTorch layout")
            if info.format == .checkpoint {
                let c = try Checkpoint.read(file)
                print("checkpoint: step \(c.step), optimiser \(c.optimizer ?? "none")")
            }
            let shown: Set<String> = ["format", "created", "model", "model_text", "mask", "layout", "tool_version", "optimizer"]
            let extra = attrs.filter { !shown.contains($0.key) }.sorted { $0.key < $1.key }
            if !extra.isEmpty { print("attributes: " + extra.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")) }
        }

        private func printRunLog() throws {
            let log = try RunLog.open(at: file)
            let info = log.info
            let trials = log.trialsInOrder
            print("\(file): LayerSplit run log (format version \(log.snapshotVersion)), layersplit \(info.toolVersion), seed \(info.seed), created \(info.created)")
            print("study: \(info.study)\(info.shard.isEmpty ? "" : ", shard \(info.shard)"); model: \(info.model); tasks: \(info.taskNames.joined(separator: ", "))")
            if RunLog.exists(at: file), FileManager.default.fileExists(atPath: log.journalPath) { print("journal: \(log.journalPath)") }
            for (k, v) in info.attributes.sorted(by: { $0.key < $1.key }) { print("\(k): \(v)") }
            let lines = info.searchSpace.split(separator: "\n", omittingEmptySubsequences: false)
            print("search space (\(info.searchSpaceHash), \(lines.count) lines):")
            for line in lines.prefix(40) { print("  | \(line)") }
            if lines.count > 40 { print("  | ... (\(lines.count - 40) more lines)") }
            let counts = Dictionary(grouping: trials, by: \.state).mapValues(\.count)
            let summary = [TrialState.done, .diverged, .failed].compactMap { s in counts[s].map { "\($0) \(s.rawValue)" } }
            print("trials: \(trials.count)" + (summary.isEmpty ? "" : " (" + summary.joined(separator: ", ") + ")") + "; invocations: \(log.runs.count)")
            guard !trials.isEmpty else { return }
            var rows: [[String]] = [["trial", "state", "stored", "mean acc", "per-task acc", "points", "wall s"]]
            for r in trials.prefix(200) {
                rows.append([r.key.id, r.state.rawValue, r.counts.stored.formatted(),
                             r.accuracy.isEmpty ? "-" : String(format: "%.4f", r.meanAccuracy),
                             r.accuracy.map { String(format: "%.3f", $0) }.joined(separator: " "),
                             "\(r.curve.count)", String(format: "%.1f", r.seconds)])
            }
            printTable(rows)
            if trials.count > 200 { print("... \(trials.count - 200) more trials (all of them: candidates.csv, or /trials with h5py)") }
        }

        private func printTree(_ h5: HDF5File, _ group: String = "/", indent: String = "") throws {
            for name in try h5.attributeNames(of: group) {
                let text = (try? h5.attributeText(name, of: group)).flatMap { $0 } ?? "?"
                let oneLine = text.count > 70 || text.contains("\n") ? String(text.prefix(67).split(separator: "\n").first ?? "") + "..." : text
                print("\(indent)@\(name) = \(oneLine)")
            }
            for name in try h5.children(of: group) {
                let path = group == "/" ? "/" + name : group + "/" + name
                switch try h5.objectKind(path) {
                case .group:
                    print("\(indent)\(name)/")
                    try printTree(h5, path, indent: indent + "  ")
                case .dataset:
                    let i = try h5.info(of: path)
                    let storage = i.chunks.map { "chunks \($0)" + (i.gzipLevel.map { ", gzip \($0)" } ?? "") } ?? "contiguous"
                    let extensible = i.maxShape.contains { $0 == nil } ? ", extensible" : ""
                    print("\(indent)\(name)  \(i.elementType) \(i.shape)  (\(storage)\(extensible))")
                case .other:
                    print("\(indent)\(name)  (other object)")
                }
            }
        }

        private func printTable(_ rows: [[String]]) {
            let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for row in rows {
                let cells = row.enumerated().map { c, s in c == row.count - 1 ? s : s.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                print("  " + cells.joined(separator: "  "))
            }
        }
    }
}
