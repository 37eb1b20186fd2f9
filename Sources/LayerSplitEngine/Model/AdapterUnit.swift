/// A unit in the adapter state (mask letter `A`): residual adapters in their parallel form (Rebuffi, Bilen &
/// Vedaldi, CVPR 2018).
///
/// The unit keeps one copy of the shared unit's weights, run over every task's rows in one pass as a shared
/// unit is (one GEMM per layer), plus per task a small adapter that runs on that task's rows only and adds its
/// output to the shared layer's, before the normalisation and nonlinearity:
/// - linear: y = ReLU(W x + b + U_t (V_t x)), a rank-r product (`LowRankAdapter`);
/// - conv: y = pool(ReLU(BN_t(conv(x) + A_t x))), a 1x1 convolution with the conv's stride (`PointwiseAdapter`);
/// - residual: the same beside each 3x3 convolution of each block; every BatchNorm of the unit is per task.
///
/// BatchNorm is per task in adapter units, as in Rebuffi et al.: it is cheap (2 floats per channel) and lets
/// each task normalise its own statistics. Each task's BN starts as a copy of the unit's (pretrained) BN, and
/// every adapter starts at zero, so a fresh adapter unit computes the shared unit's function exactly in
/// evaluation mode (in training mode, BN then normalises with each task's batch statistics instead of all
/// tasks' together).
///
/// Gradients: the shared layer runs once over all rows, so its weight gradient is the sum over tasks and is
/// written once per step (the `Layer` contract holds); each adapter's gradient comes from its own task's rows.
/// The per-task work runs side by side across threads (`Threads.forEach`).
///
/// Names: the shared tensors keep the shared unit's names (`fc.weight`, `conv.weight`,
/// `block0.conv1.weight`); task t's are prefixed `t<t>/` (`t1/adapter.U`, `t1/adapter.weight`,
/// `t1/bn.weight`, `t1/block0.adapter1.weight`, `t1/block0.bn1.running_mean`), so that a model's keys are
/// `u02/fc.weight` and `u02/t1/adapter.U`. Tensors whose name contains `adapter` are the adapters proper (no
/// counterpart in the shared unit); the others are per-task copies of shared-unit tensors (BatchNorm).
public protocol AdapterUnit: Layer {
    /// The task layout of the rows this unit is given.
    var rows: TaskRows { get }
    var taskCount: Int { get }
    /// The shared tensors, under the shared unit's names.
    var sharedParameters: [(name: String, parameter: Parameter)] { get }
    /// Task `t`'s tensors: its adapters and its BatchNorms.
    func taskParameters(_ t: Int) -> [(name: String, parameter: Parameter)]
    /// Task `t`'s BatchNorm running statistics.
    func taskBuffers(_ t: Int) -> [(name: String, tensor: Tensor)]
    /// Draws the random parts of every task's adapter and sets the rest to zero.
    func initialiseAdapters(rng: inout SplitMix64)
    /// Sets every adapter's zero-initialised factor back to zero: the unit then adds nothing to the shared layers.
    func resetAdapters()
}

extension AdapterUnit {
    /// The shared tensors, then each task's under `t<t>/` (`ParameterKey.taskSegment`): the unit-relative part
    /// of the model's keys. The model itself builds its `ParameterKey`s from `sharedParameters` and
    /// `taskParameters`.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        sharedParameters + (0..<taskCount).flatMap {
            prefixed(ParameterKey.taskSegment($0), taskParameters($0), separator: "/")
        }
    }

    public var namedBuffers: [(name: String, tensor: Tensor)] {
        (0..<taskCount).flatMap { prefixed(ParameterKey.taskSegment($0), taskBuffers($0), separator: "/") }
    }

    /// Floats stored once (the shared part).
    public var sharedParameterCount: Int { sharedParameters.reduce(0) { $0 + $1.parameter.value.count } }
    /// Floats stored for task `t` (its adapters and BatchNorms).
    public func taskParameterCount(_ t: Int) -> Int { taskParameters(t).reduce(0) { $0 + $1.parameter.value.count } }

    /// Checks that the task layout fits `rows` rows and this unit's tasks (a programming error otherwise).
    func checkLayout(rows n: Int) {
        precondition(rows.segments.count == taskCount && rows.rowCount == n,
                     "adapter unit: \(rows.segments.count) task segments covering \(rows.rowCount) rows, for \(taskCount) tasks and \(n) rows")
    }
}

func prefixed<T>(_ prefix: String, _ items: [(name: String, T)], separator: String) -> [(name: String, T)] {
    items.map { (name: prefix + separator + $0.name, $0.1) }
}

/// The naming rule of adapter units' per-task tensors.
public enum AdapterUnitNames {
    /// Whether a per-task tensor name (`adapter.U`, `block0.adapter1.weight`, `bn.weight`) is an adapter's,
    /// which has no counterpart in the shared unit (BatchNorm names are not).
    public static func isAdapter(_ name: String) -> Bool { name.contains("adapter") }
}

extension UnitSpec {
    /// Whether the unit can be in the adapter state: a conv unit needs an odd kernel, so that a 1x1 adapter with
    /// the same stride lines up with its output.
    public var acceptsAdapter: Bool {
        if case let .conv(_, kernel, _, _) = kind { return kernel % 2 == 1 }
        return true
    }

    /// Builds the unit in the adapter state for `tasks` tasks, from `proto`, the unit as `build` made it for
    /// per-example input `input`: the adapter unit takes its layers as the shared part and copies its BatchNorms
    /// per task. The adapters are zero until `initialiseAdapters`.
    func makeAdapterUnit(from proto: Sequential, input: [Int], tasks: Int, rows: TaskRows) throws -> any AdapterUnit {
        guard acceptsAdapter else {
            throw EngineError.invalidModel("unit \(self) cannot be an adapter unit (A): a 1x1 adapter lines up with a k x k convolution only for odd k; use S or T, or an odd kernel")
        }
        switch kind {
        case let .linear(_, rank):
            return LinearAdapterUnit(fc: proto.layers[0] as! Linear, rank: rank, tasks: tasks, rows: rows)
        case .conv:
            let bn = proto.layers[1] as! BatchNorm
            return ConvAdapterUnit(conv: proto.layers[0] as! Conv2d, norms: [bn] + (1..<tasks).map { _ in bn.copy() },
                                   pool: proto.layers.count > 3 ? proto.layers[3] as? MaxPool2d : nil, rows: rows)
        case .residual:
            let blocks = proto.layers.map { ResidualAdapterBlock(from: $0 as! ResidualBlock, tasks: tasks, rows: rows) }
            return ResidualAdapterUnit(blocks: blocks, rows: rows)
        }
    }
}

/// A linear unit in the adapter state: y = ReLU(W x + b + U_t (V_t x)) for the rows of task t, with W, b shared
/// (`fc.weight`, `fc.bias`) and a rank-r `LowRankAdapter` per task (`t<t>/adapter.U` `[out, r]`,
/// `t<t>/adapter.V` `[r, in]`). Stored floats: out·in + out shared, T · r · (in + out) per-task.
public final class LinearAdapterUnit: AdapterUnit {
    public let fc: Linear
    public let adapters: [LowRankAdapter]
    public let rows: TaskRows
    /// z = W x + b + U_t V_t x, all rows; then its gradient.
    private let preActivation = Tensor(zeros: [0])
    private let preActivationGrad = Tensor(zeros: [0])
    private var plannedInput: [Int] = []
    private var xViews = TaskViews(), zViews = TaskViews(), dzViews = TaskViews(), dxViews = TaskViews()

    /// A unit over `fc` (shared) with zero adapters of rank `rank` for `tasks` tasks.
    public convenience init(fc: Linear, rank: Int, tasks: Int, rows: TaskRows) {
        self.init(fc: fc, adapters: (0..<tasks).map { _ in
            LowRankAdapter(inFeatures: fc.inFeatures, outFeatures: fc.outFeatures, rank: rank)
        }, rows: rows)
    }

    public init(fc: Linear, adapters: [LowRankAdapter], rows: TaskRows) {
        precondition(!adapters.isEmpty && adapters.allSatisfy { $0.inFeatures == fc.inFeatures && $0.outFeatures == fc.outFeatures },
                     "LinearAdapterUnit: one adapter per task, each of fc's size")
        self.fc = fc
        self.adapters = adapters
        self.rows = rows
    }

    public var taskCount: Int { adapters.count }
    public var sharedParameters: [(name: String, parameter: Parameter)] { prefixed("fc", fc.namedParameters) }
    public func taskParameters(_ t: Int) -> [(name: String, parameter: Parameter)] {
        prefixed("adapter", adapters[t].namedParameters)
    }
    public func taskBuffers(_ t: Int) -> [(name: String, tensor: Tensor)] { [] }
    public func initialiseAdapters(rng: inout SplitMix64) { for a in adapters { a.initialise(rng: &rng) } }
    public func resetAdapters() { for a in adapters { a.reset() } }

    public func outputShape(for input: [Int]) throws -> [Int] { try fc.outputShape(for: input) }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        checkLayout(rows: x.shape[0])
        if x.shape != plannedInput {
            preActivation.resize(y.shape)
            preActivationGrad.resize(y.shape)
            plannedInput = x.shape
        }
        fc.forward(x, into: preActivation, training: training)
        let xs = xViews.views(of: x, rows), zs = zViews.views(of: preActivation, rows)
        let adapters = adapters
        Threads.forEach(adapters.count) { t in adapters[t].forwardAdding(xs[t], into: zs[t]) }
        let zp = preActivation.data, yp = y.data
        for i in 0..<y.count { yp[i] = Swift.max(zp[i], 0) }
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        let zp = preActivation.data, dzp = preActivationGrad.data, dyp = dy.data
        for i in 0..<dy.count { dzp[i] = zp[i] > 0 ? dyp[i] : 0 }
        fc.backward(preActivationGrad, dx: dx)   // writes dx; the adapters add theirs
        let dzs = dzViews.views(of: preActivationGrad, rows)
        let dxs = dx.map { dxViews.views(of: $0, rows) }
        let adapters = adapters
        Threads.forEach(adapters.count) { t in adapters[t].backwardAdding(dzs[t], dx: dxs?[t]) }
    }

    public func copy() -> LinearAdapterUnit {
        LinearAdapterUnit(fc: fc.copy(), adapters: adapters.map { $0.copy() }, rows: rows)
    }
}

/// A conv unit in the adapter state: y = pool(ReLU(BN_t(conv(x) + A_t x))) for the rows of task t, with the
/// k x k convolution shared (`conv.weight`) and per task a 1x1 `PointwiseAdapter` (`t<t>/adapter.weight`
/// `[out, 1, 1, in]`) and a BatchNorm (`t<t>/bn.weight`, `t<t>/bn.bias`, `t<t>/bn.running_mean`,
/// `t<t>/bn.running_var`). Stored floats: out·k·k·in shared, T · (out·in + 2·out) per-task.
public final class ConvAdapterUnit: AdapterUnit {
    public let conv: Conv2d
    public let adapters: [PointwiseAdapter]
    public let norms: [BatchNorm]
    public let pool: MaxPool2d?
    public let rows: TaskRows
    /// conv(x) + A_t x, all rows; BN_t of it (rectified in place when a pool follows); their gradients.
    private let convOut = Tensor(zeros: [0])
    private let normOut = Tensor(zeros: [0])
    private let convGrad = Tensor(zeros: [0])
    private let normGrad = Tensor(zeros: [0])
    private var plannedInput: [Int] = []
    private var xViews = TaskViews(), convViews = TaskViews(), normViews = TaskViews()
    private var convGradViews = TaskViews(), normGradViews = TaskViews(), dxViews = TaskViews()

    /// A unit over `conv` (shared) with zero adapters and the given per-task BatchNorms.
    public convenience init(conv: Conv2d, norms: [BatchNorm], pool: MaxPool2d?, rows: TaskRows) {
        self.init(conv: conv, adapters: norms.map { _ in
            PointwiseAdapter(inChannels: conv.inChannels, outChannels: conv.outChannels, stride: conv.stride)
        }, norms: norms, pool: pool, rows: rows)
    }

    public init(conv: Conv2d, adapters: [PointwiseAdapter], norms: [BatchNorm], pool: MaxPool2d?, rows: TaskRows) {
        precondition(conv.kernel % 2 == 1 && conv.padding == conv.kernel / 2,
                     "ConvAdapterUnit: the convolution needs an odd kernel k and padding k/2")
        precondition(!adapters.isEmpty && adapters.count == norms.count
                     && adapters.allSatisfy { $0.inChannels == conv.inChannels && $0.outChannels == conv.outChannels && $0.stride == conv.stride }
                     && norms.allSatisfy { $0.channels == conv.outChannels },
                     "ConvAdapterUnit: one adapter and one BatchNorm per task, of the convolution's sizes")
        self.conv = conv
        self.adapters = adapters
        self.norms = norms
        self.pool = pool
        self.rows = rows
    }

    public var taskCount: Int { adapters.count }
    public var sharedParameters: [(name: String, parameter: Parameter)] { prefixed("conv", conv.namedParameters) }
    public func taskParameters(_ t: Int) -> [(name: String, parameter: Parameter)] {
        prefixed("adapter", adapters[t].namedParameters) + prefixed("bn", norms[t].namedParameters)
    }
    public func taskBuffers(_ t: Int) -> [(name: String, tensor: Tensor)] { prefixed("bn", norms[t].namedBuffers) }
    public func initialiseAdapters(rng: inout SplitMix64) { resetAdapters() }
    public func resetAdapters() { for a in adapters { a.reset() } }

    public func outputShape(for input: [Int]) throws -> [Int] {
        let c = try conv.outputShape(for: input)
        return try pool?.outputShape(for: c) ?? c
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        checkLayout(rows: x.shape[0])
        if x.shape != plannedInput {
            // Shapes were validated when the model was built; a failure here is a programming error.
            let shape = try! conv.outputShape(for: x.shape)
            for t in [convOut, normOut, convGrad, normGrad] { t.resize(shape) }
            plannedInput = x.shape
        }
        conv.forward(x, into: convOut, training: training)
        let xs = xViews.views(of: x, rows), cs = convViews.views(of: convOut, rows)
        let ns = normViews.views(of: normOut, rows)
        let adapters = adapters, norms = norms
        Threads.forEach(adapters.count) { t in
            adapters[t].forwardAdding(xs[t], into: cs[t])
            norms[t].forward(cs[t], into: ns[t], training: training)
        }
        let np = normOut.data
        if let pool {
            for i in 0..<normOut.count { np[i] = Swift.max(np[i], 0) }
            pool.forward(normOut, into: y, training: training)
        } else {
            let yp = y.data
            for i in 0..<y.count { yp[i] = Swift.max(np[i], 0) }
        }
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        // dL/d BN output = (dy, or dy back through the pool) where the BN output is positive (the ReLU).
        let np = normOut.data, gp = normGrad.data
        if let pool {
            pool.backward(dy, dx: normGrad)
            for i in 0..<normGrad.count where np[i] <= 0 { gp[i] = 0 }
        } else {
            let dyp = dy.data
            for i in 0..<normGrad.count { gp[i] = np[i] > 0 ? dyp[i] : 0 }
        }
        let gs = normGradViews.views(of: normGrad, rows), dcs = convGradViews.views(of: convGrad, rows)
        let norms = norms, adapters = adapters
        Threads.forEach(norms.count) { t in norms[t].backward(gs[t], dx: dcs[t]) }
        conv.backward(convGrad, dx: dx)   // writes dx; the adapters add theirs
        let dxs = dx.map { dxViews.views(of: $0, rows) }
        Threads.forEach(adapters.count) { t in adapters[t].backwardAdding(dcs[t], dx: dxs?[t]) }
    }

    public func copy() -> ConvAdapterUnit {
        ConvAdapterUnit(conv: conv.copy(), adapters: adapters.map { $0.copy() }, norms: norms.map { $0.copy() },
                        pool: pool?.copy(), rows: rows)
    }
}
