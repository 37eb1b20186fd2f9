/// Stochastic gradient descent with momentum and L2 weight decay, as PyTorch's `torch.optim.SGD` computes it:
///
///     g ← ∇θ + λ θ      (λ only for parameters that decay)
///     v ← μ v + g
///     θ ← θ − η v       (Nesterov: θ ← θ − η (g + μ v))
///
/// With μ = 0 it is plain SGD. The first step starts from v = 0, which equals PyTorch's v₁ = g₁.
public final class SGD: Optimizer {
    public let parameters: [Parameter]
    public let momentum: Float
    public let weightDecay: Float
    public let nesterov: Bool
    private let velocity: [Tensor]

    public init(parameters: [Parameter], momentum: Float = 0.9, weightDecay: Float = 0, nesterov: Bool = false) {
        self.parameters = parameters
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        velocity = parameters.map { Tensor(zeros: $0.value.shape) }
    }

    /// `velocity`: one tensor per parameter.
    public var stateTensors: [(name: String, tensors: [Tensor])] { [("velocity", velocity)] }

    public func step(lr: Float) {
        for (p, v) in zip(parameters, velocity) {
            let w = p.value.data, g = p.grad.data, m = v.data
            let wd = p.decays ? weightDecay : 0, mu = momentum
            if nesterov {
                for i in 0..<p.value.count {
                    let gi = g[i] + wd * w[i]
                    m[i] = mu * m[i] + gi
                    w[i] -= lr * (gi + mu * m[i])
                }
            } else {
                for i in 0..<p.value.count {
                    m[i] = mu * m[i] + g[i] + wd * w[i]
                    w[i] -= lr * m[i]
                }
            }
        }
    }
}
