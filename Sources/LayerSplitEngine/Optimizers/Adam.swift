#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Adam (Kingma & Ba 2015) with optional decoupled weight decay (AdamW, Loshchilov & Hutter 2019):
///
///     m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
///     θ ← θ − η (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε) − η λ θ
public final class Adam: Optimizer {
    public let parameters: [Parameter]
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    private let m: [Tensor], v: [Tensor]
    private var t = 0

    public init(parameters: [Parameter], beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0) {
        self.parameters = parameters
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        m = parameters.map { Tensor(zeros: $0.value.shape) }
        v = parameters.map { Tensor(zeros: $0.value.shape) }
    }

    /// `m` and `v`: one tensor each per parameter.
    public var stateTensors: [(name: String, tensors: [Tensor])] { [("m", m), ("v", v)] }
    /// t, the number of updates so far (bias correction reads it).
    public var stateStep: Int {
        get { t }
        set { t = newValue }
    }

    public func step(lr: Float) {
        t += 1
        let c1 = 1 - powf(beta1, Float(t)), c2 = 1 - powf(beta2, Float(t))
        let b1 = beta1, b2 = beta2, eps = epsilon
        for (k, p) in parameters.enumerated() {
            let w = p.value.data, g = p.grad.data, mk = m[k].data, vk = v[k].data
            let decay = p.decays ? lr * weightDecay : 0
            for i in 0..<p.value.count {
                mk[i] = b1 * mk[i] + (1 - b1) * g[i]
                vk[i] = b2 * vk[i] + (1 - b2) * g[i] * g[i]
                w[i] -= lr * (mk[i] / c1) / ((vk[i] / c2).squareRoot() + eps) + decay * w[i]
            }
        }
    }
}
