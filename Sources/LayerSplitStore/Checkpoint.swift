import LayerSplitEngine

/// A training checkpoint: a weights file (same `/weights` layout, format `layersplit-checkpoint`) plus what is
/// needed to continue training where it stopped: the step count, the optimiser's kind, its update counter and
/// its state tensors under `/optimizer/<state>/<key>` (`/optimizer/velocity/u01/fc.weight`), in the same layout
/// as the parameter they belong to. Successive halving continues candidates from these.
public struct Checkpoint {
    public var info: WeightsInfo
    /// Trainer steps taken when it was written.
    public var step: Int
    /// `sgd`, `adam`, or nil when no optimiser state was stored.
    public var optimizer: String?

    /// Writes `model` with the trainer's step count and its optimiser's state (atomically).
    public static func write(_ model: MultiTaskModel, trainer: Trainer?, to path: String,
                             attributes: [String: String] = [:]) throws {
        try HDF5File.writeAtomically(to: path) { file in
            try WeightsFile.writeContents(model, format: .checkpoint, attributes: attributes, to: file)
            try file.setAttribute("step", Int64(trainer?.stepCount ?? 0))
            if let optimizer = trainer?.optimizer {
                try file.setAttribute("optimizer", optimizerName(optimizer))
                try file.setAttribute("optimizer_step", Int64(optimizer.stateStep))
                let keys = try parameterKeys(model, optimizer, file: path)
                let layout = WeightLayout(model: model)
                for (state, tensors) in optimizer.stateTensors {
                    for (key, tensor) in zip(keys, tensors) {
                        let (shape, values) = layout.toFile(key, tensor)
                        try file.write(values, shape: shape, to: "/optimizer/\(state)/\(key.description)")
                    }
                }
            }
        }
    }

    /// Reads what the checkpoint holds (not its tensors).
    public static func read(_ path: String) throws -> Checkpoint {
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        let info = try WeightsFile.readInfo(file)
        guard info.format == .checkpoint else {
            throw StoreError(.wrongFormat, file: path, object: "/@format",
                             "is a weights file, not a checkpoint: it has no optimiser state (load it with --init instead)")
        }
        return Checkpoint(info: info, step: Int(try file.attribute(Int64.self, "step") ?? 0),
                          optimizer: try file.stringAttribute("optimizer"))
    }

    /// Builds the checkpoint's model (its spec and mask) with every tensor loaded.
    public static func makeModel(from path: String) throws -> MultiTaskModel {
        try WeightsFile.makeModel(from: path)
    }

    /// Restores the model's tensors and, when given, the trainer's optimiser state and step count. The
    /// trainer's optimiser must be of the stored kind and over `model`'s parameters.
    public static func restore(_ path: String, into model: MultiTaskModel, trainer: Trainer? = nil) throws {
        let file = try HDF5File(opening: path)
        defer { try? file.close() }
        let info = try WeightsFile.readInfo(file)
        try WeightsFile.loadTensors(from: file, info: info, into: model, backbone: false)
        guard let trainer else { return }
        let optimizer = trainer.optimizer
        let stored = try file.stringAttribute("optimizer")
        guard stored == optimizerName(optimizer) else {
            throw StoreError(.wrongFormat, file: path, object: "/@optimizer",
                             "the checkpoint holds \(stored.map { "\($0) state" } ?? "no optimiser state") but the trainer uses \(optimizerName(optimizer)); continue with the same optimiser")
        }
        let keys = try parameterKeys(model, optimizer, file: path)
        let layout = WeightLayout(model: model)
        for (state, tensors) in optimizer.stateTensors {
            for (key, tensor) in zip(keys, tensors) {
                let dataset = "/optimizer/\(state)/\(key.description)"
                let expected = layout.fileShape(key, modelShape: tensor.shape)
                let values = try file.readFloats(dataset)
                guard values.shape == expected else {
                    throw StoreError(.shapeMismatch, file: path, object: dataset, "shape \(values.shape) but the optimiser expects \(expected)")
                }
                layout.fromFile(key, values.values, into: tensor)
            }
        }
        optimizer.stateStep = Int(try file.attribute(Int64.self, "optimizer_step") ?? 0)
        trainer.resume(atStep: Int(try file.attribute(Int64.self, "step") ?? 0))
    }

    static func optimizerName(_ optimizer: Optimizer) -> String {
        switch optimizer {
        case is SGD: "sgd"
        case is Adam: "adam"
        default: String(describing: type(of: optimizer)).lowercased()
        }
    }

    /// The key of each of the optimiser's parameters, found by identity among the model's.
    static func parameterKeys(_ model: MultiTaskModel, _ optimizer: Optimizer, file: String) throws -> [ParameterKey] {
        var byIdentity: [ObjectIdentifier: ParameterKey] = [:]
        for (key, p) in model.keyedParameters { byIdentity[ObjectIdentifier(p)] = key }
        return try optimizer.parameters.enumerated().map { i, p in
            guard let key = byIdentity[ObjectIdentifier(p)] else {
                throw StoreError(.invalidArgument, file: file, object: "/optimizer",
                                 "the optimiser's parameter \(i) is not one of the model's; build the trainer for this model")
            }
            return key
        }
    }
}
