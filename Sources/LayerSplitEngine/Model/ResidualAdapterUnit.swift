/// A basic residual block (`ResidualBlock`) in the adapter state, for the rows of task t:
///
///     h  = ReLU(BN₁,t(conv₁(x) + A₁,t x))      A₁,t: 1x1, in → out, conv₁'s stride
///     r  = BN₂,t(conv₂(h) + A₂,t h)            A₂,t: 1x1, out → out
///     sc = x, or BN_sc,t(conv_sc(x))           the projection shortcut (1x1 already) gets no adapter
///     y  = ReLU(r + sc)
///
/// conv₁, conv₂ and conv_sc are shared and run over all rows in one pass; the adapters and every BatchNorm are
/// per task. Names (relative to the block): shared `conv1.weight`, `conv2.weight`, `shortcut.conv.weight`; per
/// task `adapter1.weight`, `bn1.weight`, `bn1.bias`, `adapter2.weight`, `bn2.*`, `shortcut.bn.*`, and the BN
/// buffers `bn1.running_mean`, ….
///
/// Backward mirrors `ResidualBlock`'s, with each shared convolution's backward (which writes its dx) followed
/// by the adapters' (which add theirs on their task's rows).
public final class ResidualAdapterBlock {
    public let conv1: Conv2d
    public let conv2: Conv2d
    public let shortcutConv: Conv2d?
    public let adapter1: [PointwiseAdapter]
    public let adapter2: [PointwiseAdapter]
    public let bn1: [BatchNorm]
    public let bn2: [BatchNorm]
    public let shortcutBN: [BatchNorm]?
    public let rows: TaskRows

    // Forward: conv outputs (conv₁ then conv₂: each BN keeps x̂, not its input), conv_sc's output, h, r + sc,
    // BN_sc(·). Backward: g, two inner gradients, the shortcut BN's dx and conv_sc's dx.
    private let convOut = Tensor(zeros: [0])
    private let shortcutConvOut = Tensor(zeros: [0])
    private let hidden = Tensor(zeros: [0])
    private let preActivation = Tensor(zeros: [0])
    private let shortcutOut = Tensor(zeros: [0])
    private let gradOut = Tensor(zeros: [0])
    private let grad1 = Tensor(zeros: [0])
    private let grad2 = Tensor(zeros: [0])
    private let shortcutGrad = Tensor(zeros: [0])
    private let shortcutDx = Tensor(zeros: [0])
    private var plannedInput: [Int] = []
    private var xViews = TaskViews(), convViews = TaskViews(), scConvViews = TaskViews(), hViews = TaskViews()
    private var preViews = TaskViews(), scViews = TaskViews(), gViews = TaskViews(), g1Views = TaskViews()
    private var g2Views = TaskViews(), scGradViews = TaskViews(), dxViews = TaskViews()

    /// The block over `block`'s convolutions (shared), with zero adapters and, per task, copies of its BatchNorms
    /// (task 0 takes the block's own).
    public convenience init(from block: ResidualBlock, tasks: Int, rows: TaskRows) {
        func perTask(_ bn: BatchNorm) -> [BatchNorm] { [bn] + (1..<tasks).map { _ in bn.copy() } }
        self.init(
            conv1: block.conv1, conv2: block.conv2, shortcutConv: block.shortcutConv,
            adapter1: (0..<tasks).map { _ in
                PointwiseAdapter(inChannels: block.inChannels, outChannels: block.outChannels, stride: block.stride)
            },
            adapter2: (0..<tasks).map { _ in
                PointwiseAdapter(inChannels: block.outChannels, outChannels: block.outChannels, stride: 1)
            },
            bn1: perTask(block.bn1), bn2: perTask(block.bn2), shortcutBN: block.shortcutBN.map(perTask), rows: rows)
    }

    public init(conv1: Conv2d, conv2: Conv2d, shortcutConv: Conv2d?, adapter1: [PointwiseAdapter],
                adapter2: [PointwiseAdapter], bn1: [BatchNorm], bn2: [BatchNorm], shortcutBN: [BatchNorm]?,
                rows: TaskRows) {
        let tasks = adapter1.count
        precondition(tasks > 0 && [adapter2.count, bn1.count, bn2.count, shortcutBN?.count ?? tasks].allSatisfy { $0 == tasks },
                     "ResidualAdapterBlock: one adapter and BatchNorm of each kind per task")
        precondition((shortcutConv == nil) == (shortcutBN == nil), "ResidualAdapterBlock: shortcut needs conv and BN")
        // The structural checks of ResidualBlock, on task 0's parts.
        _ = ResidualBlock(conv1: conv1, bn1: bn1[0], conv2: conv2, bn2: bn2[0], shortcutConv: shortcutConv,
                          shortcutBN: shortcutBN?[0])
        precondition(adapter1.allSatisfy { $0.inChannels == conv1.inChannels && $0.outChannels == conv1.outChannels && $0.stride == conv1.stride }
                     && adapter2.allSatisfy { $0.inChannels == conv2.inChannels && $0.outChannels == conv2.outChannels && $0.stride == 1 },
                     "ResidualAdapterBlock: each adapter matches the convolution it sits beside")
        self.conv1 = conv1
        self.conv2 = conv2
        self.shortcutConv = shortcutConv
        self.adapter1 = adapter1
        self.adapter2 = adapter2
        self.bn1 = bn1
        self.bn2 = bn2
        self.shortcutBN = shortcutBN
        self.rows = rows
    }

    public var taskCount: Int { adapter1.count }

    public var sharedParameters: [(name: String, parameter: Parameter)] {
        var all = prefixed("conv1", conv1.namedParameters) + prefixed("conv2", conv2.namedParameters)
        if let shortcutConv { all += prefixed("shortcut.conv", shortcutConv.namedParameters) }
        return all
    }

    public func taskParameters(_ t: Int) -> [(name: String, parameter: Parameter)] {
        var all = prefixed("adapter1", adapter1[t].namedParameters) + prefixed("bn1", bn1[t].namedParameters)
            + prefixed("adapter2", adapter2[t].namedParameters) + prefixed("bn2", bn2[t].namedParameters)
        if let shortcutBN { all += prefixed("shortcut.bn", shortcutBN[t].namedParameters) }
        return all
    }

    public func taskBuffers(_ t: Int) -> [(name: String, tensor: Tensor)] {
        var all = prefixed("bn1", bn1[t].namedBuffers) + prefixed("bn2", bn2[t].namedBuffers)
        if let shortcutBN { all += prefixed("shortcut.bn", shortcutBN[t].namedBuffers) }
        return all
    }

    public func resetAdapters() { for a in adapter1 + adapter2 { a.reset() } }

    public func outputShape(for input: [Int]) throws -> [Int] {
        do {
            return try conv1.outputShape(for: input)
        } catch {
            throw EngineError.shapeMismatch(
                layer: "ResidualAdapterBlock(\(conv1.inChannels)→\(conv1.outChannels), s=\(conv1.stride))",
                expected: "[N, H, W, \(conv1.inChannels)] (NHWC)", got: input)
        }
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        if x.shape != plannedInput {
            for t in [convOut, hidden, preActivation, gradOut, grad1, grad2] { t.resize(y.shape) }
            if shortcutConv != nil {
                for t in [shortcutConvOut, shortcutOut, shortcutGrad] { t.resize(y.shape) }
                shortcutDx.resize(x.shape)
            }
            plannedInput = x.shape
        }
        let xs = xViews.views(of: x, rows), cs = convViews.views(of: convOut, rows)
        let hs = hViews.views(of: hidden, rows), ps = preViews.views(of: preActivation, rows)
        let adapter1 = adapter1, adapter2 = adapter2, bn1 = bn1, bn2 = bn2

        conv1.forward(x, into: convOut, training: training)
        Threads.forEach(taskCount) { t in
            adapter1[t].forwardAdding(xs[t], into: cs[t])
            bn1[t].forward(cs[t], into: hs[t], training: training)
            let hp = hs[t].data
            for i in 0..<hs[t].count { hp[i] = Swift.max(hp[i], 0) }
        }
        conv2.forward(hidden, into: convOut, training: training)
        if let shortcutConv, let shortcutBN {
            shortcutConv.forward(x, into: shortcutConvOut, training: training)
            let scc = scConvViews.views(of: shortcutConvOut, rows), scs = scViews.views(of: shortcutOut, rows)
            Threads.forEach(taskCount) { t in
                adapter2[t].forwardAdding(hs[t], into: cs[t])
                bn2[t].forward(cs[t], into: ps[t], training: training)
                shortcutBN[t].forward(scc[t], into: scs[t], training: training)
            }
            let pp = preActivation.data, sp = shortcutOut.data
            for i in 0..<preActivation.count { pp[i] += sp[i] }
        } else {
            Threads.forEach(taskCount) { t in
                adapter2[t].forwardAdding(hs[t], into: cs[t])
                bn2[t].forward(cs[t], into: ps[t], training: training)
            }
            let pp = preActivation.data, xp = x.data
            for i in 0..<preActivation.count { pp[i] += xp[i] }
        }
        let pp = preActivation.data, yp = y.data
        for i in 0..<y.count { yp[i] = Swift.max(pp[i], 0) }
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        precondition(preActivation.shape == dy.shape, "ResidualAdapterBlock.backward before forward")
        // g = dy ⊙ [r + sc > 0]
        let g = gradOut.data, dyp = dy.data, pp = preActivation.data, count = dy.count
        for i in 0..<count { g[i] = pp[i] > 0 ? dyp[i] : 0 }
        let gs = gViews.views(of: gradOut, rows), g1 = g1Views.views(of: grad1, rows)
        let g2 = g2Views.views(of: grad2, rows), hs = hViews.views(of: hidden, rows)
        let adapter1 = adapter1, adapter2 = adapter2, bn1 = bn1, bn2 = bn2

        // BN₂ (and BN_sc) per task, conv₂ shared, then A₂, the inner ReLU and BN₁ per task, conv₁ shared, A₁.
        if let shortcutBN {
            let scg = scGradViews.views(of: shortcutGrad, rows)
            Threads.forEach(taskCount) { t in
                bn2[t].backward(gs[t], dx: g1[t])
                shortcutBN[t].backward(gs[t], dx: scg[t])
            }
        } else {
            Threads.forEach(taskCount) { t in bn2[t].backward(gs[t], dx: g1[t]) }
        }
        conv2.backward(grad1, dx: grad2)
        Threads.forEach(taskCount) { t in
            adapter2[t].backwardAdding(g1[t], dx: g2[t])
            let d = g2[t].data, hp = hs[t].data
            for i in 0..<g2[t].count where hp[i] <= 0 { d[i] = 0 }
            bn1[t].backward(g2[t], dx: g1[t])
        }
        conv1.backward(grad1, dx: dx)
        let dxs = dx.map { dxViews.views(of: $0, rows) }
        Threads.forEach(taskCount) { t in adapter1[t].backwardAdding(g1[t], dx: dxs?[t]) }

        // Shortcut: conv_sc's parameter gradient is needed even without dx; then dx += its dx, or g itself.
        if let shortcutConv {
            shortcutConv.backward(shortcutGrad, dx: dx == nil ? nil : shortcutDx)
            if let dx {
                let dxp = dx.data, sp = shortcutDx.data
                for i in 0..<dx.count { dxp[i] += sp[i] }
            }
        } else if let dx {
            let dxp = dx.data
            for i in 0..<count { dxp[i] += g[i] }
        }
    }

    public func copy() -> ResidualAdapterBlock {
        ResidualAdapterBlock(conv1: conv1.copy(), conv2: conv2.copy(), shortcutConv: shortcutConv?.copy(),
                             adapter1: adapter1.map { $0.copy() }, adapter2: adapter2.map { $0.copy() },
                             bn1: bn1.map { $0.copy() }, bn2: bn2.map { $0.copy() },
                             shortcutBN: shortcutBN?.map { $0.copy() }, rows: rows)
    }
}

/// A residual unit (a stage of basic blocks) in the adapter state: each block a `ResidualAdapterBlock`, named
/// `block0`, `block1`, … as in the shared unit. Stored floats per task and block:
/// out·in + out·out (the adapters) + 2·out·(2, or 3 with a projection shortcut) (the BatchNorms).
public final class ResidualAdapterUnit: AdapterUnit {
    public let blocks: [ResidualAdapterBlock]
    public let rows: TaskRows
    private var activations: [Tensor] = []
    private var gradients: [Tensor] = []
    private var plannedInput: [Int] = []

    public init(blocks: [ResidualAdapterBlock], rows: TaskRows) {
        precondition(!blocks.isEmpty && blocks.allSatisfy { $0.taskCount == blocks[0].taskCount && $0.rows === rows },
                     "ResidualAdapterUnit: blocks for the same tasks and rows")
        self.blocks = blocks
        self.rows = rows
    }

    public var taskCount: Int { blocks[0].taskCount }

    public var sharedParameters: [(name: String, parameter: Parameter)] {
        blocks.enumerated().flatMap { prefixed("block\($0)", $1.sharedParameters) }
    }
    public func taskParameters(_ t: Int) -> [(name: String, parameter: Parameter)] {
        blocks.enumerated().flatMap { prefixed("block\($0)", $1.taskParameters(t)) }
    }
    public func taskBuffers(_ t: Int) -> [(name: String, tensor: Tensor)] {
        blocks.enumerated().flatMap { prefixed("block\($0)", $1.taskBuffers(t)) }
    }
    public func initialiseAdapters(rng: inout SplitMix64) { resetAdapters() }
    public func resetAdapters() { for b in blocks { b.resetAdapters() } }

    public func outputShape(for input: [Int]) throws -> [Int] {
        try blocks.reduce(input) { try $1.outputShape(for: $0) }
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        checkLayout(rows: x.shape[0])
        if x.shape != plannedInput {
            activations = []
            gradients = []
            var shape = x.shape
            for b in blocks.dropLast() {
                shape = try! b.outputShape(for: shape)
                activations.append(Tensor(zeros: shape))
                gradients.append(Tensor(zeros: shape))
            }
            plannedInput = x.shape
        }
        var current = x
        for (i, b) in blocks.enumerated() {
            let out = i == blocks.count - 1 ? y : activations[i]
            b.forward(current, into: out, training: training)
            current = out
        }
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        var upstream = dy
        for i in stride(from: blocks.count - 1, through: 0, by: -1) {
            let target = i == 0 ? dx : gradients[i - 1]
            blocks[i].backward(upstream, dx: target)
            if let target { upstream = target }
        }
    }

    public func copy() -> ResidualAdapterUnit { ResidualAdapterUnit(blocks: blocks.map { $0.copy() }, rows: rows) }
}
