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
/// The sums (and the batch mean and variance) accumulate in Double: M is N·H·W, easily 10⁵ terms.
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
    /// Per-channel sums (2C Doubles) and their Float means in backward (2C Floats).
    private let accumulators: UnsafeMutablePointer<Double>
    private let channelScratch: Tensor

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
        channelScratch = Tensor(zeros: [2 * c])
        accumulators = .allocate(capacity: 2 * c)
        accumulators.initialize(repeating: 0, count: 2 * c)
    }

    deinit { accumulators.deallocate() }

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
        let c = channels, rows = x.count / c
        normalized.resize(x.shape)
        let xp = x.data, mp = mean.data, sp = invStd.data
        if training && rows > 0 {
            // Two passes (mean, then squared deviations) in Double: no cancellation, unlike E[x²] − E[x]².
            let sum = accumulators, sq = accumulators + c
            sum.update(repeating: 0, count: c)
            sq.update(repeating: 0, count: c)
            for r in 0..<rows {
                let row = xp + r * c
                for j in 0..<c { sum[j] += Double(row[j]) }
            }
            for j in 0..<c { sum[j] /= Double(rows) }
            for r in 0..<rows {
                let row = xp + r * c
                for j in 0..<c {
                    let d = Double(row[j]) - sum[j]
                    sq[j] += d * d
                }
            }
            // PyTorch updates running_var with the unbiased variance; with one row it has none, so the
            // biased one (zero) stands in rather than a division by zero.
            let unbias = rows > 1 ? Double(rows) / Double(rows - 1) : 1
            let m = Double(momentum)
            for j in 0..<c {
                let variance = sq[j] / Double(rows)
                mp[j] = Float(sum[j])
                sp[j] = Float(1 / (variance + Double(epsilon)).squareRoot())
                runningMean[j] = Float((1 - m) * Double(runningMean[j]) + m * sum[j])
                runningVar[j] = Float((1 - m) * Double(runningVar[j]) + m * variance * unbias)
            }
        } else {
            for j in 0..<c {
                mp[j] = runningMean[j]
                sp[j] = 1 / (runningVar[j] + epsilon).squareRoot()
            }
        }
        lastTraining = training
        let np = normalized.data, yp = y.data, gp = weight.value.data, bp = bias.value.data
        for r in 0..<rows {
            let o = r * c
            for j in 0..<c {
                let xh = (xp[o + j] - mp[j]) * sp[j]
                np[o + j] = xh
                yp[o + j] = gp[j] * xh + bp[j]
            }
        }
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        let c = channels, rows = dy.count / c
        precondition(normalized.count == dy.count, "BatchNorm.backward before forward, or with another shape")
        let dyp = dy.data, np = normalized.data
        let sumDy = accumulators, sumDyXh = accumulators + c
        sumDy.update(repeating: 0, count: c)
        sumDyXh.update(repeating: 0, count: c)
        for r in 0..<rows {
            let o = r * c
            for j in 0..<c {
                let g = Double(dyp[o + j])
                sumDy[j] += g
                sumDyXh[j] += g * Double(np[o + j])
            }
        }
        let dgamma = weight.grad.data, dbeta = bias.grad.data
        for j in 0..<c {
            dgamma[j] = Float(sumDyXh[j])
            dbeta[j] = Float(sumDy[j])
        }
        guard let dx else { return }
        let dxp = dx.data, gp = weight.value.data, sp = invStd.data
        if lastTraining {
            let meanDy = channelScratch.data, meanDyXh = channelScratch.data + c
            for j in 0..<c {
                meanDy[j] = Float(sumDy[j] / Double(rows))
                meanDyXh[j] = Float(sumDyXh[j] / Double(rows))
            }
            for r in 0..<rows {
                let o = r * c
                for j in 0..<c {
                    dxp[o + j] = gp[j] * sp[j] * (dyp[o + j] - meanDy[j] - np[o + j] * meanDyXh[j])
                }
            }
        } else {
            for r in 0..<rows {
                let o = r * c
                for j in 0..<c { dxp[o + j] = gp[j] * sp[j] * dyp[o + j] }
            }
        }
    }

    public func copy() -> BatchNorm {
        BatchNorm(weight: weight.copy(), bias: bias.copy(), runningMean: runningMean.clone(),
                  runningVar: runningVar.clone(), momentum: momentum, epsilon: epsilon)
    }
}
