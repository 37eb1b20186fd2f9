/// A rank-r parallel adapter beside a Linear layer y = W x + b, for one task: it *adds* U (V x) to y.
///
///     h  = x Vᵀ           V: [r, in]
///     y += h Uᵀ           U: [out, r]
///
/// Backward, with g = dL/dy:
///     dU = gᵀ h,   dh = g U,   dV = dhᵀ x,   dx += dh V   (added to the shared layer's dx).
///
/// Initialisation (`initialise`): U = 0 and V ~ N(0, 1/in), so U V = 0 (a fresh adapter leaves the function
/// unchanged) while dU = gᵀ h is not zero, so U moves on the first step (as LoRA, Hu et al. 2021). Both factors
/// are weights and decay. Parameter names: `U`, `V`.
///
/// An adapter runs on one task's rows (a view); it owns its scratch buffers, sized on the first step.
public final class LowRankAdapter {
    public let inFeatures: Int
    public let outFeatures: Int
    public let rank: Int
    /// `[out, r]`, zero at initialisation.
    public let u: Parameter
    /// `[r, in]`.
    public let v: Parameter
    private var input: Tensor?
    /// h = x Vᵀ of the last forward pass, `[n, r]`.
    private let hidden = Tensor(zeros: [0])
    private let hiddenGrad = Tensor(zeros: [0])

    /// An adapter with both factors zero; `initialise` draws V.
    public convenience init(inFeatures: Int, outFeatures: Int, rank: Int) {
        precondition(inFeatures > 0 && outFeatures > 0 && rank > 0, "LowRankAdapter needs positive sizes")
        self.init(u: Parameter(Tensor(zeros: [outFeatures, rank]), decays: true),
                  v: Parameter(Tensor(zeros: [rank, inFeatures]), decays: true))
    }

    /// An adapter with the given factors (used by `copy()`).
    public init(u: Parameter, v: Parameter) {
        let us = u.value.shape, vs = v.value.shape
        precondition(us.count == 2 && vs.count == 2 && us[1] == vs[0], "LowRankAdapter: U [out, r] and V [r, in], got \(us), \(vs)")
        outFeatures = us[0]
        rank = us[1]
        inFeatures = vs[1]
        self.u = u
        self.v = v
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { [("U", u), ("V", v)] }

    /// U = 0, V ~ N(0, 1/in).
    public func initialise(rng: inout some RandomNumberGenerator) {
        u.value.fill(0)
        v.value.fillNormal(std: (1 / Float(inFeatures)).squareRoot(), rng: &rng)
    }

    /// Sets U back to zero: the adapter then adds nothing.
    public func reset() { u.value.fill(0) }

    /// y += U (V x), for `x` `[n, ...]` read as `[n, in]` and `y` `[n, out]`.
    public func forwardAdding(_ x: Tensor, into y: Tensor) {
        let n = x.shape[0]
        if hidden.count != n * rank { hidden.resize([n, rank]) }
        BLAS.gemm(transB: true, m: n, n: rank, k: inFeatures, a: x.data, lda: inFeatures,
                  b: v.value.data, ldb: inFeatures, beta: 0, c: hidden.data, ldc: rank)
        BLAS.gemm(transB: true, m: n, n: outFeatures, k: rank, a: hidden.data, lda: rank,
                  b: u.value.data, ldb: rank, beta: 1, c: y.data, ldc: outFeatures)
        input = x
    }

    /// Overwrites dU and dV; adds this adapter's dL/dx to `dx` unless it is nil.
    public func backwardAdding(_ dy: Tensor, dx: Tensor?) {
        guard let x = input else { preconditionFailure("LowRankAdapter.backward before forward") }
        let n = x.shape[0]
        if hiddenGrad.count != n * rank { hiddenGrad.resize([n, rank]) }
        // dU = dyᵀ h
        BLAS.gemm(transA: true, m: outFeatures, n: rank, k: n, a: dy.data, lda: outFeatures,
                  b: hidden.data, ldb: rank, beta: 0, c: u.grad.data, ldc: rank)
        // dh = dy U
        BLAS.gemm(m: n, n: rank, k: outFeatures, a: dy.data, lda: outFeatures, b: u.value.data, ldb: rank,
                  beta: 0, c: hiddenGrad.data, ldc: rank)
        // dV = dhᵀ x
        BLAS.gemm(transA: true, m: rank, n: inFeatures, k: n, a: hiddenGrad.data, lda: rank,
                  b: x.data, ldb: inFeatures, beta: 0, c: v.grad.data, ldc: inFeatures)
        // dx += dh V
        if let dx {
            BLAS.gemm(m: n, n: inFeatures, k: rank, a: hiddenGrad.data, lda: rank, b: v.value.data,
                      ldb: inFeatures, beta: 1, c: dx.data, ldc: inFeatures)
        }
    }

    public func copy() -> LowRankAdapter { LowRankAdapter(u: u.copy(), v: v.copy()) }
}

/// A parallel residual adapter (Rebuffi, Bilen & Vedaldi 2018) beside a k x k convolution (odd k, padding
/// k/2, stride s), for one task: a 1x1 convolution with the same stride whose output it *adds* to the
/// convolution's, NHWC:
///
///     y[n, i, j, o] += Σ_c A[o, c] · x[n, i·s, j·s, c]
///
/// Pixel (i·s, j·s) is the centre of the k x k window of output pixel (i, j), so both outputs have the same
/// size. `weight` is `[out, 1, 1, in]`, Conv2d's OHWI layout (PyTorch `[out, in, 1, 1]` in weights files), no
/// bias (the BatchNorm that follows has a shift). Zero at initialisation, so a fresh adapter leaves the function
/// unchanged; dA = gᵀ x is not zero, so it moves on the first step. Parameter name: `weight`.
///
/// With stride 1 the input is its own column matrix (one GEMM); with stride s > 1 the strided pixels are first
/// gathered into a buffer, kept for backward, and the input gradient is scattered back to them.
public final class PointwiseAdapter {
    public let inChannels: Int
    public let outChannels: Int
    public let stride: Int
    public let weight: Parameter
    private var input: Tensor?
    /// The strided pixels of the last input (stride > 1 only), `[n·ho·wo, in]`; then their gradient.
    private let col = Tensor(zeros: [0])
    private let colGrad = Tensor(zeros: [0])

    /// A zero adapter.
    public convenience init(inChannels: Int, outChannels: Int, stride: Int) {
        precondition(inChannels > 0 && outChannels > 0 && stride > 0, "PointwiseAdapter needs positive sizes")
        self.init(weight: Parameter(Tensor(zeros: [outChannels, 1, 1, inChannels]), decays: true), stride: stride)
    }

    /// An adapter with the given weight `[out, 1, 1, in]` (used by `copy()`).
    public init(weight: Parameter, stride: Int) {
        let s = weight.value.shape
        precondition(s.count == 4 && s[1] == 1 && s[2] == 1 && stride > 0, "PointwiseAdapter weight must be [out, 1, 1, in], got \(s)")
        outChannels = s[0]
        inChannels = s[3]
        self.stride = stride
        self.weight = weight
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { [("weight", weight)] }

    /// Sets the weight back to zero: the adapter then adds nothing.
    public func reset() { weight.value.fill(0) }

    /// y += 1x1-conv(x), for `x` `[n, h, w, in]` and `y` `[n, ho, wo, out]` with ho = (h − 1)/s + 1.
    public func forwardAdding(_ x: Tensor, into y: Tensor) {
        input = x
        let rows = y.shape[0] * y.shape[1] * y.shape[2]
        BLAS.gemm(transB: true, m: rows, n: outChannels, k: inChannels, a: columns(of: x, rows: rows),
                  lda: inChannels, b: weight.value.data, ldb: inChannels, beta: 1, c: y.data, ldc: outChannels)
    }

    /// Overwrites dA; adds this adapter's dL/dx to `dx` unless it is nil.
    public func backwardAdding(_ dy: Tensor, dx: Tensor?) {
        guard let x = input else { preconditionFailure("PointwiseAdapter.backward before forward") }
        let rows = dy.shape[0] * dy.shape[1] * dy.shape[2]
        let a = stride == 1 ? UnsafePointer(x.data) : UnsafePointer(col.data)
        // dA = dyᵀ · columns
        BLAS.gemm(transA: true, m: outChannels, n: inChannels, k: rows, a: dy.data, lda: outChannels,
                  b: a, ldb: inChannels, beta: 0, c: weight.grad.data, ldc: inChannels)
        guard let dx else { return }
        if stride == 1 {
            // dx += dy · A
            BLAS.gemm(m: rows, n: inChannels, k: outChannels, a: dy.data, lda: outChannels,
                      b: weight.value.data, ldb: inChannels, beta: 1, c: dx.data, ldc: inChannels)
            return
        }
        if colGrad.count != rows * inChannels { colGrad.resize([rows, inChannels]) }
        BLAS.gemm(m: rows, n: inChannels, k: outChannels, a: dy.data, lda: outChannels,
                  b: weight.value.data, ldb: inChannels, beta: 0, c: colGrad.data, ldc: inChannels)
        let n = x.shape[0], h = x.shape[1], w = x.shape[2], c = inChannels
        let ho = dy.shape[1], wo = dy.shape[2]
        var src = UnsafePointer(colGrad.data)
        for b in 0..<n {
            for i in 0..<ho {
                for j in 0..<wo {
                    let d = dx.data + ((b * h + i * stride) * w + j * stride) * c
                    for ch in 0..<c { d[ch] += src[ch] }
                    src += c
                }
            }
        }
    }

    /// The column matrix of `x`: `x` itself for stride 1, else its strided pixels gathered into `col`.
    private func columns(of x: Tensor, rows: Int) -> UnsafePointer<Float> {
        if stride == 1 { return UnsafePointer(x.data) }
        if col.count != rows * inChannels { col.resize([rows, inChannels]) }
        let n = x.shape[0], h = x.shape[1], w = x.shape[2], c = inChannels
        let ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1
        var dst = col.data
        for b in 0..<n {
            for i in 0..<ho {
                for j in 0..<wo {
                    dst.update(from: x.data + ((b * h + i * stride) * w + j * stride) * c, count: c)
                    dst += c
                }
            }
        }
        return UnsafePointer(col.data)
    }

    public func copy() -> PointwiseAdapter { PointwiseAdapter(weight: weight.copy(), stride: stride) }
}
