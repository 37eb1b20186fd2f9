import Foundation

/// The text `layersplit data describe` prints: per task its source, transform, labels, input shape, classes,
/// split sizes and class balance.
public enum DataDescription {
    public static func render(_ tasks: [TaskData], spec: DataSpec? = nil, seed: UInt64? = nil) -> String {
        var lines: [String] = []
        if let spec {
            var head = "\(spec.file): \(tasks.count) task\(tasks.count == 1 ? "" : "s")"
            head += ", normalize \(spec.normalize.rawValue), validation \(spec.validation)"
            if let s = spec.seed { head += ", data seed \(s) (fixed)" } else if let seed { head += ", data seed \(seed)" }
            lines.append(head)
        }
        for (t, task) in tasks.enumerated() {
            lines.append("")
            lines.append("task \(t): \(task.name)")
            lines.append("  source      \(task.provenance.source)")
            lines.append("  transform   \(task.provenance.transform)")
            lines.append("  labels      \(task.provenance.labels)")
            lines.append("  input       \(task.shape.map(String.init).joined(separator: " x "))  (\(task.provenance.normalization))")
            lines.append("  classes     \(task.classes)")
            lines.append("  sizes       train \(task.train.count), validation \(task.validation.count), test \(task.test.count)")
            for (name, set) in [("train", task.train), ("validation", task.validation), ("test", task.test)] where set.count > 0 {
                let b = set.classBalance
                let counts = set.classCounts
                let shown = counts.count <= 12 ? "  per class \(counts.map(String.init).joined(separator: " "))" : ""
                let label = name.padding(toLength: 11, withPad: " ", startingAt: 0)
                lines.append("  balance     \(label)" + String(format: "min %.1f%%  max %.1f%%", 100 * b.min, 100 * b.max) + shown)
            }
        }
        return lines.joined(separator: "\n")
    }
}
