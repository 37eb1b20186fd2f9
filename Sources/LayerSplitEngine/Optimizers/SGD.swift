/// Stochastic gradient descent with momentum and L2 weight decay, as PyTorch's `torch.optim.SGD` computes it:
///
///     g ← ∇θ + λ θ      (λ only for parameters that decay)
///     v ← μ v + g
///     θ ← θ − η v       (Nesterov: θ ← θ − η (g + μ v))
///
/// With μ = 0 it is plain SGD. The first step starts from v = 0, which equals PyTorch's v₁ = g₁.
///
/// The update is elementwise and memory-bound (θ, v and the gradient are read, θ and v written), so it is
/// vectorised and split over the threads: the parameters laid end to end are cut into `Threads.parts` ranges.
public final class SGD: Optimizer {
    public let parameters: [Parameter]
    public let momentum: Float
    public let weightDecay: Float
    public let nesterov: Bool
    private let velocity: [Tensor]
    /// offsets[i] = the elements of parameters 0..<i; offsets.last = all of them.
    private let offsets: [Int]

    public init(parameters: [Parameter], momentum: Float = 0.9, weightDecay: Float = 0, nesterov: Bool = false) {
        self.parameters = parameters
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        velocity = parameters.map { Tensor(zeros: $0.value.shape) }
        var offsets = [0]
        for p in parameters { offsets.append(offsets.last! + p.value.count) }
        self.offsets = offsets
    }

    /// `velocity`: one tensor per parameter.
    public var stateTensors: [(name: String, tensors: [Tensor])] { [("velocity", velocity)] }

    public func step(lr: Float) {
        let total = offsets.last ?? 0
        let pass = SGDPass(sgd: self, lr: lr, total: total, parts: Threads.parts(total, minimum: 1 << 16))
        Threads.forEach(pass.parts, blas: false, pass)
    }

    /// Updates elements `range` of the parameters laid end to end.
    fileprivate func update(_ range: Range<Int>, lr: Float) {
        // The parameters overlapping `range`, each over its own part of it.
        var i = 0
        while i < parameters.count && offsets[i + 1] <= range.lowerBound { i += 1 }
        while i < parameters.count && offsets[i] < range.upperBound {
            let lo = Swift.max(range.lowerBound, offsets[i]) - offsets[i]
            let hi = Swift.min(range.upperBound, offsets[i + 1]) - offsets[i]
            update(i, lo..<hi, lr: lr)
            i += 1
        }
    }

    /// Updates elements `range` of parameter `index`.
    private func update(_ index: Int, _ range: Range<Int>, lr: Float) {
        let p = parameters[index]
        let w = p.value.data, g = UnsafePointer(p.grad.data), m = velocity[index].data
        let wd = p.decays ? weightDecay : 0, mu = momentum
        var i = range.lowerBound
        if nesterov {
            while i + 4 <= range.upperBound {
                let wi = Vector.load(w + i)
                let gi = Vector.load(g + i) + wd * wi
                let mi = mu * Vector.load(m + i) + gi
                Vector.store(mi, m + i)
                Vector.store(wi - lr * (gi + mu * mi), w + i)
                i += 4
            }
            while i < range.upperBound {
                let gi = g[i] + wd * w[i]
                m[i] = mu * m[i] + gi
                w[i] -= lr * (gi + mu * m[i])
                i += 1
            }
        } else {
            while i + 4 <= range.upperBound {
                let wi = Vector.load(w + i)
                let mi = mu * Vector.load(m + i) + Vector.load(g + i) + wd * wi
                Vector.store(mi, m + i)
                Vector.store(wi - lr * mi, w + i)
                i += 4
            }
            while i < range.upperBound {
                m[i] = mu * m[i] + g[i] + wd * w[i]
                w[i] -= lr * m[i]
                i += 1
            }
        }
    }
}

/// Part k of an SGD step.
private struct SGDPass: ParallelItems {
    let sgd: SGD
    let lr: Float
    let total: Int, parts: Int

    func item(_ k: Int) { sgd.update(Threads.part(k, of: parts, total), lr: lr) }
}
