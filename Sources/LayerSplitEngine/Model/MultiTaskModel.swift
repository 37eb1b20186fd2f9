/// A multi-task network built from a `ModelSpec` and a `SharingMask`: each unit is one shared copy, one copy
/// per task, or one shared copy plus a small adapter per task (`AdapterUnit`), and every task has its own head.
///
/// Rows of all tasks travel together in one tensor (see `TaskBatch`). A shared unit runs them in one pass (one
/// GEMM per layer); a task-specific unit runs each task's rows through that task's copy, on views of the same
/// buffers, the copies side by side across threads (`Threads.forEach`); an adapter unit runs its shared layers
/// over all rows in one pass and each task's adapter on that task's rows, side by side.
///
/// Parameter keys (`ParameterKey`) are `u01/fc.weight` for a shared unit (and the shared part of an adapter
/// unit), `u01/t2/fc.weight` for task 2's copy of a specific unit, `u01/t2/adapter.U` for task 2's adapter and
/// `head/t2/weight` for heads: the unit group, the task group, then the layer's own dotted name. The same
/// strings are the dataset paths in HDF5 weight files.
public final class MultiTaskModel {
    public let spec: ModelSpec
    public let mask: SharingMask
    let slots: [Slot]
    let heads: [Linear]
    /// Reduces an image feature map to a vector before the heads; nil when the last unit outputs vectors.
    let pool: GlobalAvgPool?

    enum Slot {
        case shared(Sequential)
        case specific([Sequential])
        case adapter(any AdapterUnit)
    }

    /// The task layout of the current batch, shared with the adapter units.
    let rows = TaskRows()

    /// Per-example output shape of each unit, then of the pooled features.
    public let unitOutputShapes: [[Int]]
    public let featureCount: Int

    // Step buffers, sized on the first step and reused.
    private var activations: [Tensor]
    private var activationGrads: [Tensor]
    private let features = Tensor(zeros: [0])
    private let featureGrads = Tensor(zeros: [0])
    public private(set) var logits: [Tensor]
    private var logitGrads: [Tensor]
    private var viewCache: [ObjectIdentifier: (base: UnsafeMutablePointer<Float>, shape: [Int], views: [Tensor])] = [:]
    /// Per-task results of the last loss evaluation, kept so that a step allocates no result arrays.
    var taskResults: [(loss: Float, correct: Int)] = []
    var taskLosses: [Float] = []

    /// Builds the model with freshly initialised weights drawn from `rng`.
    ///
    /// Every unit is initialised once; a task-specific unit's copies all start from those same weights, as
    /// they would from pretrained ones (Zhang et al. 2021), and an adapter unit's shared part takes them, its
    /// per-task BatchNorms are copies, and its adapters start at zero. Heads are initialised per task.
    ///
    /// The units and heads draw the same numbers from `rng` whatever the mask, so models of one seed share
    /// their initial backbone and heads; the adapters' random factors (a linear adapter's V) come last, from a
    /// generator seeded by one more draw, and only when the mask has an adapter unit.
    public init(spec: ModelSpec, mask: SharingMask, rng: inout some RandomNumberGenerator) throws {
        try spec.validate()
        try mask.validate(units: spec.units.count)
        self.spec = spec
        self.mask = mask
        var shape = spec.inputShape
        var slots: [Slot] = []
        var shapes: [[Int]] = []
        for (u, unit) in spec.units.enumerated() {
            let proto = try unit.build(input: shape, rng: &rng)
            let input = shape
            shape = Array(try proto.outputShape(for: [1] + shape).dropFirst())
            shapes.append(shape)
            switch mask[u] {
            case .shared: slots.append(.shared(proto))
            case .specific: slots.append(.specific([proto] + (1..<spec.taskCount).map { _ in proto.copy() }))
            case .adapter:
                do {
                    slots.append(.adapter(try unit.makeAdapterUnit(from: proto, input: input, tasks: spec.taskCount, rows: rows)))
                } catch let EngineError.invalidModel(why) {
                    throw EngineError.invalidModel("unit \(u + 1): \(why)")
                }
            }
        }
        self.slots = slots
        self.unitOutputShapes = shapes
        self.pool = shape.count == 3 ? GlobalAvgPool() : nil
        self.featureCount = shape.count == 3 ? shape[2] : shape.reduce(1, *)
        let featureCount = self.featureCount
        self.heads = spec.taskClasses.map { Linear(featureCount, $0, rng: &rng) }
        activations = spec.units.map { _ in Tensor(zeros: [0]) }
        activationGrads = spec.units.map { _ in Tensor(zeros: [0]) }
        logits = spec.taskClasses.map { _ in Tensor(zeros: [0]) }
        logitGrads = spec.taskClasses.map { _ in Tensor(zeros: [0]) }
        if mask.states.contains(.adapter) {
            var adapterRNG = SplitMix64(seed: rng.next())
            for case let .adapter(a) in slots { a.initialiseAdapters(rng: &adapterRNG) }
        }
    }

    // MARK: - Parameters

    /// Every trainable tensor under its key, each stored tensor exactly once, in a fixed order (units in order,
    /// then the heads): the optimiser's order, so it must not change for results to stay bit for bit the same.
    public var keyedParameters: [(key: ParameterKey, parameter: Parameter)] {
        var out: [(key: ParameterKey, parameter: Parameter)] = []
        for (u, slot) in slots.enumerated() {
            switch slot {
            case let .shared(s):
                out += s.namedParameters.map { (ParameterKey(unit: u, name: $0.name), $0.parameter) }
            case let .specific(copies):
                for (t, c) in copies.enumerated() {
                    out += c.namedParameters.map { (ParameterKey(unit: u, task: t, name: $0.name), $0.parameter) }
                }
            case let .adapter(a):
                out += a.sharedParameters.map { (ParameterKey(unit: u, name: $0.name), $0.parameter) }
                for t in 0..<a.taskCount {
                    out += a.taskParameters(t).map { (ParameterKey(unit: u, task: t, name: $0.name), $0.parameter) }
                }
            }
        }
        for (t, h) in heads.enumerated() {
            out += h.namedParameters.map { (ParameterKey(head: t, name: $0.name), $0.parameter) }
        }
        return out
    }

    /// Non-trained state (BatchNorm running statistics), keyed like the parameters.
    public var keyedBuffers: [(key: ParameterKey, tensor: Tensor)] {
        var out: [(key: ParameterKey, tensor: Tensor)] = []
        for (u, slot) in slots.enumerated() {
            switch slot {
            case let .shared(s):
                out += s.namedBuffers.map { (ParameterKey(unit: u, name: $0.name), $0.tensor) }
            case let .specific(copies):
                for (t, c) in copies.enumerated() {
                    out += c.namedBuffers.map { (ParameterKey(unit: u, task: t, name: $0.name), $0.tensor) }
                }
            case let .adapter(a):
                for t in 0..<a.taskCount {
                    out += a.taskBuffers(t).map { (ParameterKey(unit: u, task: t, name: $0.name), $0.tensor) }
                }
            }
        }
        return out
    }

    /// `keyedParameters` under the keys' text (`u01/fc.weight`): the form weights dictionaries and files use.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        keyedParameters.map { ($0.key.description, $0.parameter) }
    }

    /// `keyedBuffers` under the keys' text.
    public var namedBuffers: [(name: String, tensor: Tensor)] {
        keyedBuffers.map { ($0.key.description, $0.tensor) }
    }

    /// The keys of the adapters proper (`u02/t1/adapter.U`, `u03/t0/block0.adapter1.weight`): per-task tensors
    /// with no counterpart in the shared unit, so pretrained backbone weights never hold them (they keep their
    /// initial, zero, function). An adapter unit's per-task BatchNorms are not among them.
    public var adapterKeys: Set<String> {
        var out: Set<String> = []
        for (u, slot) in slots.enumerated() {
            guard case let .adapter(a) = slot else { continue }
            for t in 0..<a.taskCount {
                for (name, _) in a.taskParameters(t) where AdapterUnitNames.isAdapter(name) {
                    out.insert(ParameterKey(unit: u, task: t, name: name).description)
                }
            }
        }
        return out
    }

    public var parameters: [Parameter] { keyedParameters.map(\.parameter) }

    /// Parameter counts, exact: `stored` is the number of trainable floats held, shared + specific + heads. An
    /// adapter unit's shared part counts as shared, its per-task adapters and BatchNorms as specific.
    public var parameterCounts: ParameterCounts {
        var shared = 0, specific = 0
        for slot in slots {
            switch slot {
            case let .shared(s): shared += s.parameterCount
            case let .specific(c): specific += c.reduce(0) { $0 + $1.parameterCount }
            case let .adapter(a):
                shared += a.sharedParameterCount
                specific += (0..<a.taskCount).reduce(0) { $0 + a.taskParameterCount($1) }
            }
        }
        return ParameterCounts(shared: shared, specific: specific, heads: heads.reduce(0) { $0 + $1.parameterCount })
    }

    /// Sets the backbone from one set of (pretrained, all-shared) weights keyed `u01/fc.weight`, ...: a shared
    /// unit takes them, and so does every copy of a specific unit. An adapter unit's shared part takes them,
    /// each task's BatchNorm takes the shared unit's (`u02/bn.weight`, and its running statistics when present),
    /// and its adapters are set back to zero, so that the model computes the backbone's function. Heads are
    /// left as they are unless `weights` has `head/t<k>/...` keys; a head tensor that is present must have the
    /// model's shape (a transposed or resized head is an error, not silently skipped).
    public func loadBackbone(_ weights: [String: Tensor]) throws {
        func load(_ unit: Int, _ parameters: [(name: String, parameter: Parameter)],
                  _ buffers: [(name: String, tensor: Tensor)]) throws {
            for (name, p) in parameters { try Self.assign(weights, ParameterKey(unit: unit, name: name), to: p.value) }
            for (name, b) in buffers {
                let key = ParameterKey(unit: unit, name: name)
                if weights[key.description] != nil { try Self.assign(weights, key, to: b) }
            }
        }
        for (u, slot) in slots.enumerated() {
            switch slot {
            case let .shared(s): try load(u, s.namedParameters, s.namedBuffers)
            case let .specific(copies): for c in copies { try load(u, c.namedParameters, c.namedBuffers) }
            case let .adapter(a):
                try load(u, a.sharedParameters, [])
                for t in 0..<a.taskCount {
                    try load(u, a.taskParameters(t).filter { !AdapterUnitNames.isAdapter($0.name) }, a.taskBuffers(t))
                }
                a.resetAdapters()
            }
        }
        for (t, h) in heads.enumerated() {
            for (name, p) in h.namedParameters {
                let key = ParameterKey(head: t, name: name)
                if weights[key.description] != nil { try Self.assign(weights, key, to: p.value) }
            }
        }
    }

    /// Sets every parameter and buffer from `weights` keyed exactly as `namedParameters`/`namedBuffers`.
    public func load(_ weights: [String: Tensor]) throws {
        for (key, p) in keyedParameters { try Self.assign(weights, key, to: p.value) }
        for (key, b) in keyedBuffers { try Self.assign(weights, key, to: b) }
    }

    private static func assign(_ weights: [String: Tensor], _ key: ParameterKey, to target: Tensor) throws {
        let text = key.description
        guard let w = weights[text] else { throw EngineError.weightMismatch(key: text, expected: target.shape, got: nil) }
        guard w.shape == target.shape else { throw EngineError.weightMismatch(key: text, expected: target.shape, got: w.shape) }
        target.copy(from: w)
    }

    // MARK: - Forward and backward

    /// Runs every task's rows through the network; afterwards `logits[t]` holds task `t`'s logits.
    public func forward(_ batch: TaskBatch, training: Bool) throws {
        try batch.validate(for: spec)
        forwardUnchecked(batch.inputs, segments: batch.segments, training: training)
    }

    func forwardUnchecked(_ x: Tensor, segments: [Range<Int>], training: Bool) {
        if segments != rows.segments { plan(rows: x.shape[0], segments: segments) }
        var current = x
        for (u, slot) in slots.enumerated() {
            run(slot, input: current, output: activations[u], training: training)
            current = activations[u]
        }
        let feats: Tensor
        if let pool {
            pool.forward(current, into: features, training: training)
            feats = features
        } else {
            feats = current
        }
        let featViews = views(of: feats)
        Threads.forEach(heads.count) { t in heads[t].forward(featViews[t], into: logits[t], training: training) }
    }

    /// Sizes every step buffer for a batch layout. Runs when the layout changes, never in a steady-state step.
    private func plan(rows n: Int, segments: [Range<Int>]) {
        viewCache.removeAll()
        rows.set(segments)
        for u in slots.indices {
            activations[u].resize([n] + unitOutputShapes[u])
            activationGrads[u].resize([n] + unitOutputShapes[u])
        }
        features.resize([n, featureCount])
        featureGrads.resize([n, featureCount])
        for t in heads.indices {
            logits[t].resize([segments[t].count, spec.taskClasses[t]])
            logitGrads[t].resize([segments[t].count, spec.taskClasses[t]])
        }
        taskResults = Array(repeating: (0, 0), count: heads.count)
        taskLosses = Array(repeating: 0, count: heads.count)
    }

    private func run(_ slot: Slot, input: Tensor, output: Tensor, training: Bool) {
        switch slot {
        case let .shared(s):
            s.forward(input, into: output, training: training)
        case let .specific(copies):
            let xs = views(of: input), ys = views(of: output)
            Self.eachCopy(copies.count, balanced: Self.balancesCopies(copies)) { t in
                copies[t].forward(xs[t], into: ys[t], training: training)
            }
        case let .adapter(a):
            a.forward(input, into: output, training: training)
        }
    }

    /// Back-propagates from `logitGrads` (set by `lossAndGradients`), writing every parameter's gradient.
    func backward() {
        let last = slots.count - 1
        let dFeatViews = views(of: pool != nil ? featureGrads : activationGrads[last])
        let lg = logitGrads
        Threads.forEach(heads.count) { t in heads[t].backward(lg[t], dx: dFeatViews[t]) }
        pool?.backward(featureGrads, dx: activationGrads[last])
        for u in stride(from: last, through: 0, by: -1) {
            let dy = activationGrads[u]
            let dx = u == 0 ? nil : activationGrads[u - 1]   // the input needs no gradient
            switch slots[u] {
            case let .shared(s):
                s.backward(dy, dx: dx)
            case let .specific(copies):
                let dys = views(of: dy)
                let dxs = dx.map { views(of: $0) }
                Self.eachCopy(copies.count, balanced: Self.balancesCopies(copies)) { t in
                    copies[t].backward(dys[t], dx: dxs?[t])
                }
            case let .adapter(a):
                a.backward(dy, dx: dx)
            }
        }
    }

    /// Runs `body(t)` for the `n` copies of a task-specific unit. Side by side (one copy per thread) unless
    /// `balanced` and the copies do not divide evenly among the threads: then one copy after another, each
    /// with every thread (its layers split their own products). With 3 tasks on 2 threads, side by side takes
    /// two rounds of a whole copy (one thread idles through the second); one after another takes three rounds
    /// of half a copy, the work of 1.5 copies per thread. Either way each copy's arithmetic depends only on the
    /// thread count, so results stay deterministic for a seed and a thread count.
    static func eachCopy(_ n: Int, balanced: Bool, _ body: (Int) -> Void) {
        let threads = Threads.count
        if balanced && threads > 1 && n % threads != 0 && Threads.parallelism > 1 {
            for t in 0..<n { body(t) }
        } else {
            Threads.forEach(n, body)
        }
    }

    /// Whether a specific unit's copies run one after another when the tasks do not divide among the threads:
    /// yes for linear units (a few large products, which `Linear` splits evenly by rows), no for convolution
    /// and residual units, whose copies are many short passes (BatchNorm, ReLU, im2col chunks of 32 images)
    /// where the extra synchronisation cost more than the idle thread (+9% for a 3-task TTTT CNN on 2 threads).
    static func balancesCopies(_ copies: [Sequential]) -> Bool {
        copies.first?.layers.allSatisfy { $0 is Linear || $0 is ReLU } ?? false
    }

    /// Per-task views of a buffer's rows, cached per buffer so that a steady-state step allocates nothing.
    private func views(of tensor: Tensor) -> [Tensor] {
        let key = ObjectIdentifier(tensor)
        if let hit = viewCache[key], hit.base == tensor.data, hit.shape == tensor.shape { return hit.views }
        let v = rows.segments.map { Tensor(rowsOf: tensor, $0) }
        viewCache[key] = (tensor.data, tensor.shape, v)
        return v
    }

    /// Computes each task's mean cross-entropy and, when `gradients` is true, dL/dlogits for the total loss
    /// L = Σₜ Lₜ (every task weighs the same, and a task-specific copy sees only its own task's gradient).
    func lossAndGradients(labels: [Int32], segments: [Range<Int>], gradients: Bool) -> [(loss: Float, correct: Int)] {
        labels.withUnsafeBufferPointer { all in
            for t in 0..<heads.count {
                let l = UnsafeBufferPointer(rebasing: all[segments[t]])
                taskResults[t] = SoftmaxCrossEntropy.evaluate(logits: logits[t], labels: l, grad: gradients ? logitGrads[t] : nil)
            }
        }
        return taskResults
    }
}

/// Stored parameter counts of a multi-task model.
public struct ParameterCounts: Hashable, Sendable, Codable {
    /// Floats in shared units and in adapter units' shared parts (stored once).
    public var shared: Int
    /// Floats in task-specific units, all copies together, and in adapter units' per-task parts (adapters and
    /// BatchNorms), all tasks together.
    public var specific: Int
    /// Floats in the heads, all tasks together.
    public var heads: Int
    /// Everything stored: shared + specific + heads.
    public var stored: Int { shared + specific + heads }

    public init(shared: Int, specific: Int, heads: Int) {
        self.shared = shared
        self.specific = specific
        self.heads = heads
    }
}
