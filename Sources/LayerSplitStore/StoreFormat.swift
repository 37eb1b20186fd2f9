import Foundation
import LayerSplitEngine

/// The kinds of LayerSplit HDF5 file, as the root attribute `format` names them, and what they share.
public enum StoreFormat: String, Sendable, CaseIterable {
    /// Weights of a model (`layersplit pretrain`, `scripts/torch_to_h5.py`).
    case weights = "layersplit-weights"
    /// Weights plus optimiser state and step count, to continue training.
    case checkpoint = "layersplit-checkpoint"
    /// A search's run log: one group per candidate.
    case runLog = "layersplit-runlog"

    /// The version written for this format; readers refuse newer ones. Run logs are at 2 (columnar trials
    /// beside a journal); version-1 run logs (one group per candidate) are still read.
    public var version: Int64 { self == .runLog ? 2 : 1 }

    /// The `format_version` of an open file (1 when absent, as in the first files written).
    static func version(of file: HDF5File) throws -> Int64 { try file.attribute(Int64.self, "format_version") ?? 1 }

    /// The format of an open file, or a `.wrongFormat` error naming what the file is instead.
    static func of(_ file: HDF5File) throws -> StoreFormat {
        guard let text = try file.stringAttribute("format") else {
            throw StoreError(.wrongFormat, file: file.path, object: "/",
                             "not a LayerSplit file (no 'format' attribute); write weights with `layersplit pretrain` or scripts/torch_to_h5.py")
        }
        guard let format = StoreFormat(rawValue: text) else {
            throw StoreError(.wrongFormat, file: file.path, object: "/@format",
                             "unknown format '\(text)'; expected one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let version = try Self.version(of: file)
        guard version <= format.version else {
            throw StoreError(.wrongFormat, file: file.path, object: "/@format_version",
                             "format version \(version) was written by a newer LayerSplit (this one reads up to \(format.version)); update LayerSplit")
        }
        return format
    }

    /// Writes `format`, `format_version` and `created` on the root group.
    func stamp(_ file: HDF5File) throws {
        try file.setAttribute("format", rawValue)
        try file.setAttribute("format_version", version)
        try file.setAttribute("created", ISO8601DateFormatter().string(from: Date()))
    }

    /// Root attributes LayerSplit writes itself in files of this format; callers' extra attributes may not use
    /// these names.
    var reservedAttributes: Set<String> {
        switch self {
        case .weights, .checkpoint:
            ["format", "format_version", "created", "model", "model_text", "mask", "layout", "step", "optimizer", "optimizer_step"]
        case .runLog:
            ["format", "format_version", "created", "search_space", "search_space_hash", "tool_version", "seed"]
        }
    }
}

/// The model description stored as JSON in the `model` attribute: `{"input_shape": [28, 28, 1], "units":
/// ["conv:32", "residual:64:s2"], "task_classes": [10, 10]}`. Unit strings are `UnitSpec`'s compact form.
struct ModelDescription: Codable, Equatable {
    var input_shape: [Int]
    var units: [String]
    var task_classes: [Int]

    init(_ spec: ModelSpec) {
        input_shape = spec.inputShape
        units = spec.units.map(\.description)
        task_classes = spec.taskClasses
    }

    func spec() throws -> ModelSpec {
        let spec = ModelSpec(inputShape: input_shape, units: try units.map { try UnitSpec(parsing: $0) },
                             taskClasses: task_classes)
        try spec.validate()
        return spec
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// The model of an open weights file or checkpoint.
    static func read(_ file: HDF5File) throws -> ModelSpec {
        guard let text = try file.stringAttribute("model") else {
            throw StoreError(.missing, file: file.path, object: "/@model",
                             "no model description; every weights file needs the 'model' attribute (see docs/FORMATS.md)")
        }
        do {
            return try JSONDecoder().decode(ModelDescription.self, from: Data(text.utf8)).spec()
        } catch let e as EngineError {
            throw StoreError(.wrongFormat, file: file.path, object: "/@model", "invalid model description: \(e)")
        } catch {
            throw StoreError(.wrongFormat, file: file.path, object: "/@model",
                             "not the JSON {\"input_shape\": [...], \"units\": [...], \"task_classes\": [...]} (see docs/FORMATS.md)")
        }
    }
}
