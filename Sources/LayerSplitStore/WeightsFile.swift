import LayerSplitEngine

/// What a weights file (or checkpoint) says about itself, without its tensors.
public struct WeightsInfo: Sendable {
    public var format: StoreFormat
    public var spec: ModelSpec
    public var mask: SharingMask
    /// Every string attribute of the root group (`tool_version`, `created`, callers' own, ...).
    public var attributes: [String: String]
    /// Keys of the stored tensors (`u01/fc.weight`, `u01/t1/conv.weight`, `head/t0/bias`, ...), sorted.
    public var keys: [String]
}

/// Weights files: one float32 dataset per parameter and buffer under `/weights`, named by its key
/// (`/weights/u03/conv.weight`, `/weights/u01/t2/fc.bias`, `/weights/head/t0/weight`), in PyTorch's layouts
/// (`WeightLayout`), with the model description, the mask and the format as root attributes. The layout is a
/// contract, documented in docs/FORMATS.md; checkpoints extend it.
///
/// Files are replaced atomically (temporary file, fsync, rename): a killed writer leaves the old file or none.
public enum WeightsFile {
    /// The group holding the tensors.
    public static let group = "/weights"

    /// Writes every parameter and buffer of `model`. `attributes` become extra root string attributes
    /// (`tool_version`, `data`, ...).
    public static func write(_ model: MultiTaskModel, to path: String, attributes: [String: String] = [:]) throws {
        try HDF5File.writeAtomically(to: path) { file in
            try writeContents(model, format: .weights, attributes: attributes, to: file)
        }
    }

    /// The format, model, mask, attributes and tensor keys of a weights file or checkpoint.
    public static func info(_ path: String) throws -> WeightsInfo {
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        return try readInfo(file)
    }

    /// Builds the model the file describes (its spec and mask) and loads every tensor into it.
    public static func makeModel(from path: String) throws -> MultiTaskModel {
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        let info = try readInfo(file)
        var rng = SplitMix64(seed: 0)
        let model: MultiTaskModel
        do {
            model = try MultiTaskModel(spec: info.spec, mask: info.mask, rng: &rng)
        } catch {
            throw StoreError(.wrongFormat, file: path, object: "/@mask", "cannot build the model the file describes: \(error)")
        }
        try loadTensors(from: file, info: info, into: model, backbone: false)
        return model
    }

    /// Sets every parameter and buffer of `model` from the file, which must hold exactly its keys and shapes
    /// (a file written for the same model and mask).
    public static func load(_ path: String, into model: MultiTaskModel) throws {
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        try loadTensors(from: file, info: try readInfo(file), into: model, backbone: false)
    }

    /// Initialises `model` from pretrained weights (`--init`): every copy of a task-specific unit starts from
    /// the file's shared unit (`u02/fc.weight`), or from the file's own copy for that task (`u02/t1/fc.weight`)
    /// when it has one; shared units take the shared weights. An adapter unit's shared part takes the shared
    /// weights, its per-task BatchNorms start from the shared ones, and its adapters (`model.adapterKeys`) keep
    /// their initial (zero) function unless the file has them. Heads are taken when the file has them with the
    /// same shape; a head for another class count keeps its fresh weights and is returned as a warning line
    /// (one per head). BatchNorm statistics are taken when the file has them. Any other tensor of the wrong
    /// shape, a head stored transposed (`[in, out]` where `[out, in]` is expected) included, is an error naming
    /// the key and both shapes.
    ///
    /// - Returns: one line per head of the file that was not used, saying why.
    @discardableResult
    public static func initialise(_ model: MultiTaskModel, from path: String) throws -> [String] {
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        let info = try readInfo(file)
        // Adapter options (a linear unit's rank) do not change the shared unit, so they may differ.
        guard info.spec.inputShape == model.spec.inputShape,
              info.spec.units.map(\.backbone) == model.spec.units.map(\.backbone) else {
            throw StoreError(.shapeMismatch, file: path, object: "/@model",
                             "the weights are for '\(info.spec)' but this run's model is '\(model.spec)'; pretrain with the same --units (and input)")
        }
        return try loadTensors(from: file, info: info, into: model, backbone: true)
    }

    // MARK: - Shared with Checkpoint

    static func writeContents(_ model: MultiTaskModel, format: StoreFormat, attributes: [String: String],
                              to file: HDF5File) throws {
        if let clash = attributes.keys.first(where: format.reservedAttributes.contains) {
            throw StoreError(.invalidArgument, file: file.path, object: "/@" + clash, "is written by LayerSplit itself; use another attribute name")
        }
        try format.stamp(file)
        try file.setAttribute("model", ModelDescription(model.spec).json)
        try file.setAttribute("model_text", model.spec.description)
        try file.setAttribute("mask", model.mask.description)
        try file.setAttribute("layout", "pytorch")
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) { try file.setAttribute(name, value) }
        try file.createGroup(group)
        let layout = WeightLayout(model: model)
        for (key, tensor) in keyedTensors(model) {
            let (shape, values) = layout.toFile(key, tensor)
            try file.write(values, shape: shape, to: group + "/" + key.description)
        }
    }

    /// Every parameter, then every buffer, in the model's order: what a weights file holds.
    static func keyedTensors(_ model: MultiTaskModel) -> [(key: ParameterKey, tensor: Tensor)] {
        model.keyedParameters.map { ($0.key, $0.parameter.value) } + model.keyedBuffers
    }

    /// `keyedTensors` under the keys' text, the dataset names under `/weights`.
    static func allTensors(_ model: MultiTaskModel) -> [(String, Tensor)] {
        keyedTensors(model).map { ($0.key.description, $0.tensor) }
    }

    static func readInfo(_ file: HDF5File) throws -> WeightsInfo {
        let format = try StoreFormat.of(file)
        guard format == .weights || format == .checkpoint else {
            throw StoreError(.wrongFormat, file: file.path, object: "/@format",
                             "is a \(format.rawValue) file, not weights; give a weights file or checkpoint")
        }
        if let layout = try file.stringAttribute("layout"), layout != "pytorch" {
            throw StoreError(.wrongFormat, file: file.path, object: "/@layout", "layout '\(layout)' is unknown; this LayerSplit reads 'pytorch'")
        }
        let spec = try ModelDescription.read(file)
        guard let maskText = try file.stringAttribute("mask") else {
            throw StoreError(.missing, file: file.path, object: "/@mask", "no mask; write one letter per unit, e.g. \"\(String(repeating: "S", count: spec.units.count))\"")
        }
        let mask: SharingMask
        do {
            mask = try SharingMask(parsing: maskText)
            try mask.validate(units: spec.units.count)
        } catch {
            throw StoreError(.wrongFormat, file: file.path, object: "/@mask", "\(error)")
        }
        var attributes: [String: String] = [:]
        for name in try file.attributeNames() {
            if let text = try? file.stringAttribute(name) { attributes[name] = text }
        }
        guard file.exists(group) else {
            throw StoreError(.missing, file: file.path, object: group, "no weights group; the file holds no tensors")
        }
        let keys = try file.datasetPaths(under: group).map { String($0.dropFirst(group.count + 1)) }
        return WeightsInfo(format: format, spec: spec, mask: mask, attributes: attributes, keys: keys)
    }

    /// Loads the file's tensors into `model`: exactly (every key, same shapes) or as a backbone (`initialise`).
    /// Returns a warning line for each head left out because it is for another class count.
    @discardableResult
    static func loadTensors(from file: HDF5File, info: WeightsInfo, into model: MultiTaskModel, backbone: Bool) throws -> [String] {
        var warnings: [String] = []
        var skippedHeads = Set<String>()
        let layout = WeightLayout(model: model)
        let present = Set(info.keys)
        let hint = info.spec == model.spec && info.mask == model.mask ? ""
            : "; the file holds '\(info.spec)' with mask \(info.mask), this model is '\(model.spec)' with mask \(model.mask)"
        let parameterKeys = Set(model.keyedParameters.map(\.key))
        let adapterKeys = backbone ? model.adapterKeys : []
        for (key, tensor) in keyedTensors(model) {
            var source = key.description
            var required = true
            if backbone {
                let isBuffer = !parameterKeys.contains(key)
                if key.isHead || adapterKeys.contains(source) {
                    required = false
                } else if !present.contains(source), let shared = key.sharedKey {
                    source = shared.description
                }
                if isBuffer { required = false }
            }
            let dataset = group + "/" + source
            guard present.contains(source) else {
                if required {
                    throw StoreError(.missing, file: file.path, object: dataset,
                                     "missing; the model needs it with shape \(layout.fileShape(key, modelShape: tensor.shape))\(hint)")
                }
                continue
            }
            let expected = layout.fileShape(key, modelShape: tensor.shape)
            let shape = try file.info(of: dataset).shape
            guard shape == expected else {
                if backbone && key.isHead, let skipped = otherClassCount(shape, expected) {
                    // A head for another class count: keep the fresh one, and say so once per head.
                    let head = source.split(separator: "/").dropLast().joined(separator: "/")   // head/t1
                    if skippedHeads.insert(head).inserted {
                        warnings.append("\(file.path): \(dataset): shape \(shape) but this model's head has \(expected) (\(skipped)); the head starts from fresh weights")
                    }
                    continue
                }
                if backbone && adapterKeys.contains(source) {
                    // An adapter of another rank (adapter options may differ from the pretrained file's).
                    warnings.append("\(file.path): \(dataset): shape \(shape) but this model's adapter has \(expected); the adapter starts from its initial weights")
                    continue
                }
                let transposed = shape.count == 2 && shape == expected.reversed()
                throw StoreError(.shapeMismatch, file: file.path, object: dataset,
                                 "shape \(shape) but the model expects \(expected)"
                                 + (transposed ? " (stored transposed? tensors are [out, in], PyTorch's layout)" : "") + hint)
            }
            let values = try file.readFloats(dataset).values
            layout.fromFile(key, values, into: tensor)
        }
        return warnings
    }

    /// When a head's stored shape differs from the model's only in its class count (the first dimension):
    /// what the two counts are; nil for any other difference (a transposed head, another input width).
    static func otherClassCount(_ shape: [Int], _ expected: [Int]) -> String? {
        guard shape.count == expected.count, let k = shape.first, let m = expected.first, k != m,
              shape.dropFirst() == expected.dropFirst() else { return nil }
        if shape.count == 2 && shape == expected.reversed() { return nil }
        return "\(k) classes in the file, \(m) here"
    }
}
