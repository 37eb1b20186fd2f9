#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Adam (Kingma & Ba 2015) with optional decoupled weight decay (AdamW, Loshchilov & Hutter 2019):
///
///     m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
///     θ ← θ − η (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε) − η λ θ
///
/// The update is elementwise and memory-bound (θ, m, v and the gradient read, θ, m and v written), so, as SGD's,
/// it is one fused pass vectorised with `SIMD4` and split over the threads: the parameters laid end to end are
/// cut into `Threads.parts` ranges. Every element goes through the same operations in the same order whichever
/// lane or thread computes it (no reassociation, no fused multiply-add), so the result is the same bit for bit
/// at any thread count, and equal to the scalar loop's.
public final class Adam: Optimizer {
    public let parameters: [Parameter]
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    private let m: [Tensor], v: [Tensor]
    private var t = 0
    /// offsets[i] = the elements of parameters 0..<i; offsets.last = all of them.
    private let offsets: [Int]

    public init(parameters: [Parameter], beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0) {
        self.parameters = parameters
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        m = parameters.map { Tensor(zeros: $0.value.shape) }
        v = parameters.map { Tensor(zeros: $0.value.shape) }
        var offsets = [0]
        for p in parameters { offsets.append(offsets.last! + p.value.count) }
        self.offsets = offsets
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
        let total = offsets.last ?? 0
        let pass = AdamPass(adam: self, lr: lr, c1: c1, c2: c2, total: total, parts: Threads.parts(total, minimum: 1 << 15))
        Threads.forEach(pass.parts, blas: false, pass)
    }

    /// Updates elements `range` of the parameters laid end to end.
    fileprivate func update(_ range: Range<Int>, lr: Float, c1: Float, c2: Float) {
        var i = 0
        while i < parameters.count && offsets[i + 1] <= range.lowerBound { i += 1 }
        while i < parameters.count && offsets[i] < range.upperBound {
            let lo = Swift.max(range.lowerBound, offsets[i]) - offsets[i]
            let hi = Swift.min(range.upperBound, offsets[i + 1]) - offsets[i]
            update(i, lo..<hi, lr: lr, c1: c1, c2: c2)
            i += 1
        }
    }

    /// Updates elements `range` of parameter `index`.
    private func update(_ index: Int, _ range: Range<Int>, lr: Float, c1: Float, c2: Float) {
        let p = parameters[index]
        let w = p.value.data, g = UnsafePointer(p.grad.data), mk = m[index].data, vk = v[index].data
        let decay = p.decays ? lr * weightDecay : 0
        let b1 = beta1, b2 = beta2, eps = epsilon, a1 = 1 - beta1, a2 = 1 - beta2
        var i = range.lowerBound
        while i + 4 <= range.upperBound {
            let gi = Vector.load(g + i), wi = Vector.load(w + i)
            let mi = b1 * Vector.load(mk + i) + a1 * gi
            let vi = b2 * Vector.load(vk + i) + a2 * gi * gi
            Vector.store(mi, mk + i)
            Vector.store(vi, vk + i)
            Vector.store(wi - (lr * (mi / c1) / ((vi / c2).squareRoot() + eps) + decay * wi), w + i)
            i += 4
        }
        while i < range.upperBound {
            mk[i] = b1 * mk[i] + a1 * g[i]
            vk[i] = b2 * vk[i] + a2 * g[i] * g[i]
            w[i] -= lr * (mk[i] / c1) / ((vk[i] / c2).squareRoot() + eps) + decay * w[i]
            i += 1
        }
    }
}

/// Part k of an Adam step.
private struct AdamPass: ParallelItems {
    let adam: Adam
    let lr: Float, c1: Float, c2: Float
    let total: Int, parts: Int

    func item(_ k: Int) { adam.update(Threads.part(k, of: parts, total), lr: lr, c1: c1, c2: c2) }
}
