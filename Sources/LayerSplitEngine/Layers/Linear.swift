/// A fully connected layer: y = x Wᵀ + b.
///
/// `weight` is `[out, in]` and `bias` `[out]`, PyTorch's `nn.Linear` layout, so weights move between the two
/// without a transpose. Any input of shape `[N, ...]` is read as `[N, in]` with `in` the product of the
/// trailing dimensions (an NHWC image row is its flattened features).
///
/// Threads: a large product is shared out by the layer itself, each part with single-threaded OpenBLAS: rows
/// of y and dx (columns of them when the batch has fewer rows than W has outputs), and rows (output features)
/// of dW and db, so no part sums what another computes and the
/// result does not depend on which thread runs it. OpenBLAS's own threads then never spin beside the
/// engine's worker threads.
///
/// Initialisation: W ~ N(0, 2/in) (He et al. 2015, for ReLU networks), b = 0.
public final class Linear: Layer {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: Parameter
    public let bias: Parameter
    private var input: Tensor?
    private let ones = Tensor(zeros: [0])

    public init(_ inFeatures: Int, _ outFeatures: Int, rng: inout some RandomNumberGenerator) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let w = Tensor(zeros: [outFeatures, inFeatures])
        w.fillNormal(std: (2 / Float(inFeatures)).squareRoot(), rng: &rng)
        weight = Parameter(w, decays: true)
        bias = Parameter(Tensor(zeros: [outFeatures]), decays: false)
    }

    /// A layer with the given parameters (used by `copy()` and when loading weights).
    public init(weight: Parameter, bias: Parameter) {
        precondition(weight.value.shape.count == 2 && bias.value.shape == [weight.value.shape[0]])
        self.outFeatures = weight.value.shape[0]
        self.inFeatures = weight.value.shape[1]
        self.weight = weight
        self.bias = bias
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight), ("bias", bias)]
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        let features = input.dropFirst().reduce(1, *)
        guard input.count >= 2, features == inFeatures else {
            throw EngineError.shapeMismatch(
                layer: "Linear(\(inFeatures)→\(outFeatures))", expected: "[N, \(inFeatures)]", got: input)
        }
        return [input[0], outFeatures]
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        input = x
        let n = x.shape[0]
        let pass = LinearPass(layer: self, forward: true, x: x, y: y, dx: nil, rows: n, parts: parts(rows: n))
        Threads.forEach(pass.parts, blas: true, pass)
    }

    /// Parts to split a product of `rows` rows into: with several threads, the layer shares its GEMMs out
    /// (rows of y and dx, rows of dW) instead of leaving OpenBLAS to thread each one, when they are large.
    private func parts(rows: Int) -> Int {
        Swift.max(1, Swift.min(rows, outFeatures,
                               Threads.parts(rows * inFeatures * outFeatures, minimum: Self.minimumPartWork)))
    }

    /// Multiply-adds per part below which a product is not split (the heads' are far below).
    static let minimumPartWork = 1 << 20

    /// Whether a split product of `rows` rows is cut by columns (output features of y, input features of dx)
    /// rather than by rows: when the batch is smaller than W, so that each part packs only its share of W
    /// instead of all of it (small batches: 3 tasks x 64 rows through 512 x 512 weights). The cut depends only
    /// on the sizes and the thread count, so results stay deterministic.
    @inline(__always)
    private func splitsColumns(rows: Int) -> Bool { rows < outFeatures }

    /// Forward, part k of `parts`: rows of y, or its columns `Threads.part(k, of: parts, out)` for a small batch.
    fileprivate func forwardPart(_ k: Int, of parts: Int, _ x: Tensor, _ y: Tensor) {
        let n = x.shape[0], out = outFeatures
        guard parts > 1, splitsColumns(rows: n) else {
            forwardPart(x, y, rows: Threads.part(k, of: parts, n))
            return
        }
        let o = Threads.part(k, of: parts, out)
        guard !o.isEmpty, n > 0 else { return }
        let yp = y.data + o.lowerBound
        for i in 0..<n { (yp + i * out).update(from: bias.value.data + o.lowerBound, count: o.count) }
        BLAS.gemm(transB: true, m: n, n: o.count, k: inFeatures, a: x.data, lda: inFeatures,
                  b: weight.value.data + o.lowerBound * inFeatures, ldb: inFeatures, beta: 1, c: yp, ldc: out)
    }

    /// Forward, rows `range` of y: start from the bias, then add x Wᵀ (beta = 1): one pass instead of two.
    fileprivate func forwardPart(_ x: Tensor, _ y: Tensor, rows range: Range<Int>) {
        guard !range.isEmpty else { return }
        let out = outFeatures, yp = y.data + range.lowerBound * out
        for i in 0..<range.count { (yp + i * out).update(from: bias.value.data, count: out) }
        BLAS.gemm(transB: true, m: range.count, n: out, k: inFeatures,
                  a: x.data + range.lowerBound * inFeatures, lda: inFeatures, b: weight.value.data, ldb: inFeatures,
                  beta: 1, c: yp, ldc: out)
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        guard let x = input else { preconditionFailure("Linear.backward before forward") }
        let n = x.shape[0]
        if ones.count != n {
            ones.resize([n])
            ones.fill(1)
        }
        let pass = LinearPass(layer: self, forward: false, x: x, y: dy, dx: dx, rows: n, parts: parts(rows: n))
        Threads.forEach(pass.parts, blas: true, pass)
    }

    /// Backward, part k of `parts`: rows of dW and db (output features), and rows of dx.
    fileprivate func backwardPart(_ k: Int, of parts: Int, x: Tensor, dy: Tensor, dx: Tensor?) {
        let n = x.shape[0], out = outFeatures, inF = inFeatures
        let o = Threads.part(k, of: parts, out)
        if !o.isEmpty {
            // dW[o] = dy[:, o]ᵀ x, db[o] = column sums of dy[:, o] = dy[:, o]ᵀ 1
            BLAS.gemm(transA: true, m: o.count, n: inF, k: n, a: dy.data + o.lowerBound, lda: out, b: x.data, ldb: inF,
                      beta: 0, c: weight.grad.data + o.lowerBound * inF, ldc: inF)
            BLAS.gemv(trans: true, m: n, n: o.count, a: dy.data + o.lowerBound, lda: out, x: ones.data,
                      beta: 0, y: bias.grad.data + o.lowerBound)
        }
        // dx = dy W, columns c (input features) for a small batch
        if let dx, parts > 1, splitsColumns(rows: n) {
            let c = Threads.part(k, of: parts, inF)
            if !c.isEmpty && n > 0 {
                BLAS.gemm(m: n, n: c.count, k: out, a: dy.data, lda: out, b: weight.value.data + c.lowerBound,
                          ldb: inF, beta: 0, c: dx.data + c.lowerBound, ldc: inF)
            }
            return
        }
        // dx = dy W, rows r
        let r = Threads.part(k, of: parts, n)
        if let dx, !r.isEmpty {
            BLAS.gemm(m: r.count, n: inF, k: out, a: dy.data + r.lowerBound * out, lda: out, b: weight.value.data,
                      ldb: inF, beta: 0, c: dx.data + r.lowerBound * inF, ldc: inF)
        }
    }

    public func copy() -> Linear { Linear(weight: weight.copy(), bias: bias.copy()) }
}

/// Part k of a Linear layer's forward (rows of y) or backward (`y` = dy).
private struct LinearPass: ParallelItems {
    let layer: Linear
    let forward: Bool
    let x: Tensor, y: Tensor, dx: Tensor?
    let rows: Int, parts: Int

    func item(_ k: Int) {
        if forward {
            layer.forwardPart(k, of: parts, x, y)
        } else {
            layer.backwardPart(k, of: parts, x: x, dy: y, dx: dx)
        }
    }
}
