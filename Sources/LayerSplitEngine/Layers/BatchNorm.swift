/// Batch normalisation (Ioffe & Szegedy 2015) over the last dimension: for an input `[N, ..., C]` every one
/// of the M = N·… rows is a sample of C channels, so the same layer follows an NHWC convolution (statistics
/// over batch and pixels, like PyTorch's `BatchNorm2d`) and a Linear layer (`BatchNorm1d`).
///
///     x̂ = (x − μ) / √(σ² + ε),   y = γ · x̂ + β        (per channel)
///
/// Training mode uses the batch's μ and biased σ² (divided by M) and updates the running statistics the way
/// PyTorch does, with the *unbiased* variance (divided by M − 1):
///     running ← (1 − momentum) · running + momentum · batch.
/// Eval mode uses the running statistics instead, so it is an affine map per channel.
///
/// Backward, with sums over the M rows of one channel:
///     dγ = Σ dy · x̂,   dβ = Σ dy,
///     training: dx = γ / √(σ² + ε) · (dy − dβ/M − x̂ · dγ/M)   (μ and σ² depend on x),
///     eval:     dx = γ / √(σ² + ε) · dy                          (the statistics are constants).
/// The sums (and the batch mean and variance) accumulate in Double: M is N·H·W, easily 10⁵ terms. The
/// statistics take one pass over x, with sums of x − K and (x − K)² for K the first row (a shift near the
/// mean keeps E[(x−K)²] − E[x−K]² free of cancellation, and Double leaves ~10⁻¹⁶ of relative error).
///
/// Threads: every pass is split by rows into `Threads.parts` parts side by side; each part sums its rows
/// into its own accumulators, which are added in part order, so a thread count gives the same bits each run.
///
/// The residual block fuses its elementwise steps into BN's passes (module API): a ReLU and a residual added
/// before it in forward (`forward(_:into:training:relu:residual:)`), and in backward the ReLU's mask
/// (`backward(_:dx:mask:)`): from BN's own output, recomputed from x̂ (so h need not be read), or from a
/// saved output y, writing the masked gradient out for the block's shortcut on the way.
///
/// `weight` (γ, initially 1) and `bias` (β, initially 0) do not decay. The buffers are named `running_mean`
/// and `running_var`, as in PyTorch's state dict.
public final class BatchNorm: Layer {
    public let channels: Int
    public let momentum: Float
    public let epsilon: Float
    public let weight: Parameter
    public let bias: Parameter
    public let runningMean: Tensor
    public let runningVar: Tensor

    /// x̂ of the last forward pass, which is all backward needs of the input.
    private let normalized = Tensor(zeros: [0])
    /// The μ and 1/√(σ² + ε) of the last forward pass, per channel.
    private let mean: Tensor
    private let invStd: Tensor
    private var lastTraining = false
    /// Per-part channel sums: 2C Doubles per part, each part on its own cache lines (`partStride` apart).
    private var accumulators: UnsafeMutablePointer<Double>
    private var accumulatorParts = 1
    private let partStride: Int
    /// Per-channel Float coefficients of the elementwise passes (3C).
    private let channelScratch: Tensor

    /// Elements per part below which splitting a pass over threads does not pay (waking a thread costs µs).
    static let minimumPartSize = 1 << 15

    public convenience init(channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
        precondition(channels > 0, "BatchNorm needs at least one channel")
        let gamma = Tensor(zeros: [channels])
        gamma.fill(1)
        let runningVar = Tensor(zeros: [channels])
        runningVar.fill(1)
        self.init(weight: Parameter(gamma, decays: false),
                  bias: Parameter(Tensor(zeros: [channels]), decays: false),
                  runningMean: Tensor(zeros: [channels]), runningVar: runningVar,
                  momentum: momentum, epsilon: epsilon)
    }

    /// A layer with the given parameters and running statistics, all `[channels]` (used by `copy()` and when
    /// loading weights). The tensors are used, not copied.
    public init(weight: Parameter, bias: Parameter, runningMean: Tensor, runningVar: Tensor,
                momentum: Float = 0.1, epsilon: Float = 1e-5) {
        let c = weight.value.count
        precondition(weight.value.shape == [c] && bias.value.shape == [c] && runningMean.shape == [c]
                     && runningVar.shape == [c] && c > 0, "BatchNorm tensors must all be [channels]")
        channels = c
        self.momentum = momentum
        self.epsilon = epsilon
        self.weight = weight
        self.bias = bias
        self.runningMean = runningMean
        self.runningVar = runningVar
        mean = Tensor(zeros: [c])
        invStd = Tensor(zeros: [c])
        channelScratch = Tensor(zeros: [3 * c])
        partStride = (2 * c + 7) / 8 * 8
        accumulators = Self.allocateAccumulators(parts: 1, stride: partStride)
    }

    deinit { UnsafeMutableRawPointer(accumulators).deallocate() }

    private static func allocateAccumulators(parts: Int, stride: Int) -> UnsafeMutablePointer<Double> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: parts * stride * MemoryLayout<Double>.stride,
                                                   alignment: 64)
        let p = raw.bindMemory(to: Double.self, capacity: parts * stride)
        p.initialize(repeating: 0, count: parts * stride)
        return p
    }

    /// Accumulators for `parts` parts; grows only when the thread count does (the first step).
    private func accumulators(parts: Int) -> UnsafeMutablePointer<Double> {
        if parts > accumulatorParts {
            UnsafeMutableRawPointer(accumulators).deallocate()
            accumulators = Self.allocateAccumulators(parts: parts, stride: partStride)
            accumulatorParts = parts
        }
        return accumulators
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight), ("bias", bias)]
    }

    public var namedBuffers: [(name: String, tensor: Tensor)] {
        [("running_mean", runningMean), ("running_var", runningVar)]
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count >= 2, input.last == channels else {
            throw EngineError.shapeMismatch(
                layer: "BatchNorm(\(channels))", expected: "[N, ..., \(channels)] (channels last)", got: input)
        }
        return input
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        forward(x, into: y, training: training, relu: false, residual: nil)
    }

    /// y = BN(x) (+ `residual`), then max(·, 0) when `relu`: the residual block's BN₁ + ReLU and
    /// BN₂ + shortcut + ReLU in one pass. `residual` has y's size; it may not be y.
    func forward(_ x: Tensor, into y: Tensor, training: Bool, relu: Bool, residual: Tensor?) {
        let c = channels, rows = x.count / c
        normalized.resize(x.shape)
        let xp = UnsafePointer(x.data), mp = mean.data, sp = invStd.data
        precondition(residual == nil || (residual!.count == y.count && residual!.data != y.data),
                     "BatchNorm: the residual must have the output's size and be another tensor")
        var pass = BatchNormPass(kind: .statistics, channels: c, rows: rows,
                                 parts: Threads.parts(x.count, minimum: Self.minimumPartSize), input: xp)
        if training && rows > 0 {
            // Sums of x − K and (x − K)², K = the first row, per part, then added in part order.
            pass.accumulators = accumulators(parts: pass.parts)
            pass.stride = partStride
            Threads.forEach(pass.parts, blas: false, pass)
            let acc: UnsafeMutablePointer<Double> = pass.accumulators
            pass.sumParts()
            // PyTorch updates running_var with the unbiased variance; with one row it has none, so the
            // biased one (zero) stands in rather than a division by zero.
            let unbias = rows > 1 ? Double(rows) / Double(rows - 1) : 1
            let m = Double(momentum), count = Double(rows)
            for j in 0..<c {
                let shifted = acc[j] / count
                let mu = Double(xp[j]) + shifted
                let variance = Swift.max(acc[c + j] / count - shifted * shifted, 0)
                mp[j] = Float(mu)
                sp[j] = Float(1 / (variance + Double(epsilon)).squareRoot())
                runningMean[j] = Float((1 - m) * Double(runningMean[j]) + m * mu)
                runningVar[j] = Float((1 - m) * Double(runningVar[j]) + m * variance * unbias)
            }
        } else {
            for j in 0..<c {
                mp[j] = runningMean[j]
                sp[j] = 1 / (runningVar[j] + epsilon).squareRoot()
            }
        }
        lastTraining = training
        // x̂ = (x − μ)·s, y = γ x̂ + β (+ r) (then ReLU).
        pass.kind = .normalize
        pass.normalized = normalized.data
        pass.output = y.data
        pass.mean = UnsafePointer(mp)
        pass.invStd = UnsafePointer(sp)
        pass.gamma = UnsafePointer(weight.value.data)
        pass.beta = UnsafePointer(bias.value.data)
        pass.residual = residual.map { UnsafePointer($0.data) }
        pass.relu = relu
        Threads.forEach(pass.parts, blas: false, pass)
    }

    /// Which ReLU, if any, follows this BN (so that `dy` is the gradient of its output, not BN's).
    enum ReLUMask {
        case none
        /// y = max(BN(x), 0): the mask is γ x̂ + β > 0, recomputed from x̂ exactly as forward computed it.
        case ownOutput
        /// The mask is `output > 0` (the ReLU's saved output); the masked gradient is written to `maskedInto`.
        case output(Tensor, maskedInto: Tensor)
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        backward(dy, dx: dx, mask: .none)
    }

    /// `backward` for dy the gradient of a ReLU after BN (see `ReLUMask`).
    func backward(_ dy: Tensor, dx: Tensor?, mask: ReLUMask) {
        let c = channels, rows = dy.count / c
        precondition(normalized.count == dy.count, "BatchNorm.backward before forward, or with another shape")
        // g = dy (masked); Σ g and Σ g·x̂ per part, added in part order. With a saved output, g is written out
        // for the dx pass and the caller.
        var pass = BatchNormPass(kind: .gradientStatistics, channels: c, rows: rows,
                                 parts: Threads.parts(dy.count, minimum: Self.minimumPartSize),
                                 input: UnsafePointer(dy.data))
        pass.normalized = normalized.data
        pass.gamma = UnsafePointer(weight.value.data)
        pass.beta = UnsafePointer(bias.value.data)
        pass.accumulators = accumulators(parts: pass.parts)
        pass.stride = partStride
        switch mask {
        case .none: break
        case .ownOutput: pass.relu = true
        case let .output(y, g):
            precondition(y.count == dy.count && g.count == dy.count, "BatchNorm.backward: mask of another size")
            pass.reluOutput = UnsafePointer(y.data)
            pass.output = g.data
        }
        Threads.forEach(pass.parts, blas: false, pass)
        pass.sumParts()
        let sumDy: UnsafeMutablePointer<Double> = pass.accumulators, sumDyXh = sumDy + c
        let dgamma = weight.grad.data, dbeta = bias.grad.data
        for j in 0..<c {
            dgamma[j] = Float(sumDyXh[j])
            dbeta[j] = Float(sumDy[j])
        }
        guard let dx else { return }
        // dx = a·(g − m₁ − x̂·m₂) per channel, with a = γ/√(σ² + ε) and m₁, m₂ the means of g and g·x̂ (training),
        // or a·g (eval: m₁ = m₂ = 0).
        let a = channelScratch.data, m1 = a + c, m2 = a + 2 * c, sp = invStd.data
        for j in 0..<c {
            a[j] = weight.value[j] * sp[j]
            m1[j] = lastTraining ? Float(sumDy[j] / Double(rows)) : 0
            m2[j] = lastTraining ? Float(sumDyXh[j] / Double(rows)) : 0
        }
        pass.kind = .inputGradient
        if let g = pass.output { pass.input = UnsafePointer(g) }   // g was written out: read it, unmasked
        pass.coefficients = UnsafePointer(a)
        pass.inputGradient = dx.data
        Threads.forEach(pass.parts, blas: false, pass)
    }

    public func copy() -> BatchNorm {
        BatchNorm(weight: weight.copy(), bias: bias.copy(), runningMean: runningMean.clone(),
                  runningVar: runningVar.clone(), momentum: momentum, epsilon: epsilon)
    }
}

/// One of BatchNorm's passes over rows, split into `parts` parts by rows (`Threads.part`); part k sums into
/// its own accumulators (`accumulators + k·stride`).
private struct BatchNormPass: ParallelItems {
    enum Kind {
        /// Σ (x − K), Σ (x − K)² with K the first row.
        case statistics
        /// x̂ and y from `input` (x), with `residual` and `relu`.
        case normalize
        /// Σ g, Σ g·x̂ for g = `input` (dy), masked by `relu` (BN's own output) or by `reluOutput` > 0, in which
        /// case g is also written to `output`.
        case gradientStatistics
        /// dx = a·(g − m₁ − x̂·m₂) from g = `input`, masked by `relu` (BN's own output).
        case inputGradient
    }

    var kind: Kind
    let channels: Int, rows: Int, parts: Int
    var input: UnsafePointer<Float>
    var normalized: UnsafeMutablePointer<Float>! = nil
    var output: UnsafeMutablePointer<Float>? = nil
    var mean: UnsafePointer<Float>! = nil, invStd: UnsafePointer<Float>! = nil
    var gamma: UnsafePointer<Float>! = nil, beta: UnsafePointer<Float>! = nil
    var residual: UnsafePointer<Float>? = nil
    var relu = false
    var reluOutput: UnsafePointer<Float>? = nil
    var accumulators: UnsafeMutablePointer<Double>! = nil
    var stride = 0
    /// a, m₁, m₂ (C each) for the input gradient.
    var coefficients: UnsafePointer<Float>! = nil
    var inputGradient: UnsafeMutablePointer<Float>! = nil

    init(kind: Kind, channels: Int, rows: Int, parts: Int, input: UnsafePointer<Float>) {
        self.kind = kind
        self.channels = channels
        self.rows = rows
        self.parts = parts
        self.input = input
    }

    /// Adds parts 1... of the accumulators into part 0's, in order.
    func sumParts() {
        for p in 1..<Swift.max(parts, 1) {
            let q = accumulators + p * stride
            for j in 0..<(2 * channels) { accumulators[j] += q[j] }
        }
    }

    func item(_ k: Int) {
        let range = Threads.part(k, of: parts, rows)
        switch kind {
        case .statistics:
            let s1 = accumulators + k * stride, s2 = s1 + channels, xp = input
            s1.update(repeating: 0, count: 2 * channels)
            accumulate(range, s1, s2) { o, j in
                let d = Vector.load(xp + o + j) - Vector.load(xp + j)
                return (d, d)
            } scalar: { o, j in
                let d = xp[o + j] - xp[j]
                return (d, d)
            }
        case .normalize:
            switch (relu, residual) {
            case (false, nil): normalize(range, relu: false, residual: nil)
            case (true, nil): normalize(range, relu: true, residual: nil)
            case let (false, r?): normalize(range, relu: false, residual: r)
            case let (true, r?): normalize(range, relu: true, residual: r)
            }
        case .gradientStatistics:
            let s1 = accumulators + k * stride, s2 = s1 + channels
            let dyp = input, np = UnsafePointer(normalized!), gp = gamma!, bp = beta!
            s1.update(repeating: 0, count: 2 * channels)
            if let yp = reluOutput, let gout = output {
                accumulate(range, s1, s2) { o, j in
                    let v = Vector.load(dyp + o + j).replacing(with: 0, where: Vector.load(yp + o + j) .<= 0)
                    Vector.store(v, gout + o + j)
                    return (v, Vector.load(np + o + j))
                } scalar: { o, j in
                    let d = dyp[o + j]
                    let v = yp[o + j] > 0 ? d : 0
                    gout[o + j] = v
                    return (v, np[o + j])
                }
            } else if relu {
                accumulate(range, s1, s2) { o, j in
                    let xh = Vector.load(np + o + j), g = Vector.load(dyp + o + j)
                    let h = Vector.load(gp + j) * xh + Vector.load(bp + j)
                    return (g.replacing(with: 0, where: h .<= 0), xh)
                } scalar: { o, j in
                    let xh = np[o + j], g = dyp[o + j]
                    return (gp[j] * xh + bp[j] > 0 ? g : 0, xh)
                }
            } else {
                accumulate(range, s1, s2) { o, j in
                    (Vector.load(dyp + o + j), Vector.load(np + o + j))
                } scalar: { o, j in
                    (dyp[o + j], np[o + j])
                }
            }
        case .inputGradient:
            if relu { inputGradient(range, masked: true) } else { inputGradient(range, masked: false) }
        }
    }

    /// x̂ = (x − μ)·s and y = γ x̂ + β (+ r) (then ReLU) over `range`'s rows.
    @inline(__always)
    private func normalize(_ range: Range<Int>, relu: Bool, residual: UnsafePointer<Float>?) {
        let c = channels, xp = input, np = normalized!, yp = output!
        let mp = mean!, sp = invStd!, gp = gamma!, bp = beta!
        var o = range.lowerBound * c
        let hi = range.upperBound * c
        if c % 4 == 0 {
            while o < hi {
                var j = 0
                while j < c {
                    let xh = (Vector.load(xp + o + j) - Vector.load(mp + j)) * Vector.load(sp + j)
                    Vector.store(xh, np + o + j)
                    var v = Vector.load(gp + j) * xh + Vector.load(bp + j)
                    if let residual { v += Vector.load(residual + o + j) }
                    if relu { v = Vector.relu(v) }
                    Vector.store(v, yp + o + j)
                    j += 4
                }
                o += c
            }
        } else {
            while o < hi {
                for j in 0..<c {
                    let xh = (xp[o + j] - mp[j]) * sp[j]
                    np[o + j] = xh
                    var v = gp[j] * xh + bp[j]
                    if let residual { v += residual[o + j] }
                    if relu { v = v > 0 ? v : 0 }
                    yp[o + j] = v
                }
                o += c
            }
        }
    }

    /// dx = a·(g − m₁ − x̂·m₂) over `range`'s rows, g masked by γ x̂ + β > 0 when `masked`.
    @inline(__always)
    private func inputGradient(_ range: Range<Int>, masked: Bool) {
        let c = channels, gq = input, np = UnsafePointer(normalized!), dxp = inputGradient!
        let gp = gamma!, bp = beta!, ap = coefficients!, m1p = ap + c, m2p = ap + 2 * c
        if c % 4 == 0 {
            for r in range {
                let o = r * c
                var j = 0
                while j < c {
                    let xh = Vector.load(np + o + j)
                    var g = Vector.load(gq + o + j)
                    if masked { g.replace(with: 0, where: Vector.load(gp + j) * xh + Vector.load(bp + j) .<= 0) }
                    Vector.store(Vector.load(ap + j) * (g - Vector.load(m1p + j) - xh * Vector.load(m2p + j)), dxp + o + j)
                    j += 4
                }
            }
        } else {
            for r in range {
                let o = r * c
                for j in 0..<c {
                    let xh = np[o + j], d = gq[o + j]
                    let g = masked ? (gp[j] * xh + bp[j] > 0 ? d : 0) : d
                    dxp[o + j] = ap[j] * (g - m1p[j] - xh * m2p[j])
                }
            }
        }
    }

    /// Adds Σ u and Σ u·v over `rows` to s1 and s2, in Double, where (u, v) is the pair `vector(o, j)` gives for
    /// channels j..<j+4 of the row at element o (or `scalar` for channel j when C is not a multiple of 4).
    @inline(__always)
    private func accumulate(
        _ rows: Range<Int>, _ s1: UnsafeMutablePointer<Double>, _ s2: UnsafeMutablePointer<Double>,
        vector: (Int, Int) -> (SIMD4<Float>, SIMD4<Float>), scalar: (Int, Int) -> (Float, Float)
    ) {
        let c = channels
        if c % 4 == 0 {
            for r in rows {
                let o = r * c
                var j = 0
                while j < c {
                    let (u, v) = vector(o, j)
                    let ud = SIMD4<Double>(u), vd = SIMD4<Double>(v)
                    Vector.storeDouble(Vector.loadDouble(s1 + j) + ud, s1 + j)
                    Vector.storeDouble(Vector.loadDouble(s2 + j) + ud * vd, s2 + j)
                    j += 4
                }
            }
        } else {
            for r in rows {
                let o = r * c
                for j in 0..<c {
                    let (u, v) = scalar(o, j)
                    s1[j] += Double(u)
                    s2[j] += Double(u) * Double(v)
                }
            }
        }
    }
}
