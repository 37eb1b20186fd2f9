import LayerSplitEngine

/// Numeric root attributes of weights files: a number is stored as a number (a pretrained file's seed, the
/// accuracies `layersplit pretrain` measured), never as text to parse back.
extension WeightsFile {
    /// Writes `model` as `write(_:to:attributes:)` does, plus integer and float-array root attributes.
    public static func write(_ model: MultiTaskModel, to path: String, attributes: [String: String] = [:],
                             integers: [String: Int64], reals: [String: [Double]] = [:]) throws {
        let reserved = StoreFormat.weights.reservedAttributes
        if let clash = (Array(integers.keys) + Array(reals.keys)).first(where: { reserved.contains($0) || attributes[$0] != nil }) {
            throw StoreError(.invalidArgument, file: path, object: "/@" + clash, "is written by LayerSplit itself or given twice; use another attribute name")
        }
        try HDF5File.writeAtomically(to: path) { file in
            try writeContents(model, format: .weights, attributes: attributes, to: file)
            for (k, v) in integers.sorted(by: { $0.key < $1.key }) { try file.setAttribute(k, v) }
            for (k, v) in reals.sorted(by: { $0.key < $1.key }) { try file.setAttribute(k, values: v) }
        }
    }

    /// A string root attribute of a weights file or checkpoint (nil when absent), without reading its tensors.
    public static func stringAttribute(_ name: String, of path: String) throws -> String? {
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        return try file.stringAttribute(name)
    }
}
