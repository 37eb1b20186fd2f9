import Foundation
import LayerSplitSearch

/// CSV and JSON renderings of a `FrontReport`.
public enum TableWriter {
    /// One row per candidate (pruned ones too, with status `pruned`).
    public static func candidatesCSV(_ r: FrontReport) -> String {
        var lines = [header(r) + ",on_front"]
        let onFront = Set(r.front.map { r.candidates[$0].mask })
        for c in r.candidates { lines.append(row(c, r) + "," + (onFront.contains(c.mask) ? "1" : "0")) }
        for c in r.pruned { lines.append(row(c, r, status: "pruned") + ",0") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The front, by stored parameters, with the paired difference to the previous front point (fractions):
    /// its mean, std, wins and losses, its 95% interval (`delta_ci_low`, `delta_ci_high`, empty with one seed)
    /// and `verdict` (`better`, `indistinguishable`, `worse`, `one-seed`, `no-seeds`).
    public static func frontCSV(_ r: FrontReport) -> String {
        var lines = [header(r) + ",delta_vs_previous,delta_std,wins,losses,delta_ci_low,delta_ci_high,verdict"]
        for (k, i) in r.front.enumerated() {
            var line = row(r.candidates[i], r)
            if let d = r.neighbourDifferences[k] {
                let ci = d.interval()
                line += "," + [fmt(d.mean), fmt(d.std), String(d.winsB), String(d.winsA),
                               ci.map { fmt($0.lowerBound) } ?? "", ci.map { fmt($0.upperBound) } ?? "", d.verdict.rawValue].joined(separator: ",")
            } else {
                line += ",,,,,,,"
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func header(_ r: FrontReport) -> String {
        columns(r).map(csvField).joined(separator: ",")
    }

    /// The column names before the report-specific ones: `acc_<task name>` keeps the task's real name (quoted
    /// when it needs it); a name equal to an earlier column gets `_2`, `_3`, ... so that every column is unique.
    static func columns(_ r: FrontReport) -> [String] {
        let fixed = ["mask", "family", "steps", "stored_params", "shared_params", "specific_params", "head_params"]
        let tail = ["mean_acc", "std_acc", "seeds", "status", "seconds", "on_front", "delta_vs_previous", "delta_std",
                    "wins", "losses", "delta_ci_low", "delta_ci_high", "verdict"]
        var taken = Set(fixed + tail)
        let tasks = r.taskNames.map { name -> String in
            var column = "acc_" + name, k = 2
            while taken.contains(column) { column = "acc_\(name)_\(k)"; k += 1 }
            taken.insert(column)
            return column
        }
        return fixed + tasks + ["mean_acc", "std_acc", "seeds", "status", "seconds"]
    }

    /// A CSV field per RFC 4180: in double quotes (inner ones doubled) when it holds a comma, a double quote,
    /// CR or LF; as it is otherwise.
    static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private static func row(_ c: Candidate, _ r: FrontReport, status: String? = nil) -> String {
        let task = c.taskAccuracy
        // A standard deviation needs two seeds: with one it is missing (an empty cell), not 0.
        return ([c.mask.description, c.family, String(c.steps), String(c.counts.stored), String(c.counts.shared),
                 String(c.counts.specific), String(c.counts.heads)]
            + r.taskNames.indices.map { $0 < task.count ? fmt(task[$0]) : "" }
            + [fmt(c.meanAccuracy), c.trials.count < 2 ? "" : fmt(c.stdAccuracy), String(c.trials.count),
               status ?? c.state.rawValue, String(format: "%.2f", c.seconds)]).map(csvField).joined(separator: ",")
    }

    /// The front as JSON: study, task names, and for each front point its mask, family, counts, accuracies and
    /// the paired comparison with the previous point (with its 95% interval and verdict).
    public static func frontJSON(_ r: FrontReport) -> String {
        struct Point: Encodable {
            var mask: String, family: String, steps: Int
            var stored_params: Int, shared_params: Int, specific_params: Int, head_params: Int
            /// `std_accuracy` is absent with one seed: there is no spread to report, and 0 would claim one.
            var mean_accuracy: Double, std_accuracy: Double?, task_accuracy: [Double], seeds: [UInt64]
            var vs_previous: Diff?
        }
        struct Diff: Encodable {
            var mean: Double, std: Double, wins: Int, losses: Int, ties: Int, seeds: Int
            /// The interval's level and bounds (nil with one seed) and the verdict.
            var level: Double, ci_low: Double?, ci_high: Double?, verdict: String
        }
        struct Doc: Encodable { var study: String, tasks: [String], all_shared_params: Int, front: [Point] }
        let points = r.front.enumerated().map { k, i -> Point in
            let c = r.candidates[i]
            let d = r.neighbourDifferences[k].map {
                Diff(mean: $0.mean, std: $0.std, wins: $0.winsB, losses: $0.winsA, ties: $0.ties, seeds: $0.seeds,
                     level: PairedDifference.level, ci_low: $0.interval()?.lowerBound, ci_high: $0.interval()?.upperBound,
                     verdict: $0.verdict.rawValue)
            }
            return Point(mask: c.mask.description, family: c.family, steps: c.steps, stored_params: c.counts.stored,
                         shared_params: c.counts.shared, specific_params: c.counts.specific, head_params: c.counts.heads,
                         mean_accuracy: c.meanAccuracy, std_accuracy: c.trials.count < 2 ? nil : c.stdAccuracy, task_accuracy: c.taskAccuracy,
                         seeds: c.seeds, vs_previous: d)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let doc = Doc(study: r.study, tasks: r.taskNames, all_shared_params: r.allSharedCount, front: points)
        return String(decoding: try! encoder.encode(doc), as: UTF8.self) + "\n"
    }

    static func fmt(_ v: Double) -> String { v.isFinite ? String(format: "%.6f", v) : "" }
}
