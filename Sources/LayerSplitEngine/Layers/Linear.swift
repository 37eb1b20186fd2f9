/// A fully connected layer: y = x Wᵀ + b.
///
/// `weight` is `[out, in]` and `bias` `[out]`, PyTorch's `nn.Linear` layout, so weights move between the two
/// without a transpose. Any input of shape `[N, ...]` is read as `[N, in]` with `in` the product of the
/// trailing dimensions (an NHWC image row is its flattened features).
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
        let n = x.shape[0]
        // Start from the bias in every row, then add x Wᵀ (beta = 1): one pass instead of two.
        for i in 0..<n { (y.data + i * outFeatures).update(from: bias.value.data, count: outFeatures) }
        BLAS.gemm(transB: true, m: n, n: outFeatures, k: inFeatures,
                  a: x.data, lda: inFeatures, b: weight.value.data, ldb: inFeatures,
                  beta: 1, c: y.data, ldc: outFeatures)
        input = x
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        guard let x = input else { preconditionFailure("Linear.backward before forward") }
        let n = x.shape[0]
        // dW = dyᵀ x
        BLAS.gemm(transA: true, m: outFeatures, n: inFeatures, k: n,
                  a: dy.data, lda: outFeatures, b: x.data, ldb: inFeatures,
                  beta: 0, c: weight.grad.data, ldc: inFeatures)
        // db = column sums of dy = dyᵀ 1
        if ones.count != n {
            ones.resize([n])
            ones.fill(1)
        }
        BLAS.gemv(trans: true, m: n, n: outFeatures, a: dy.data, lda: outFeatures, x: ones.data,
                  beta: 0, y: bias.grad.data)
        // dx = dy W
        if let dx {
            BLAS.gemm(m: n, n: inFeatures, k: outFeatures, a: dy.data, lda: outFeatures,
                      b: weight.value.data, ldb: inFeatures, beta: 0, c: dx.data, ldc: inFeatures)
        }
    }

    public func copy() -> Linear { Linear(weight: weight.copy(), bias: bias.copy()) }
}
