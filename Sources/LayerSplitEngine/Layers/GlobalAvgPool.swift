/// The mean over all pixels of each channel: [N, H, W, C] → [N, C], y[n, c] = (1/HW) Σ_{h, w} x[n, h, w, c].
///
/// This is how a ResNet reduces its last feature map to a vector for the classifier, whatever the image size.
/// One image is an HW x C matrix X, so its output is the matrix-vector product y = (1/HW) Xᵀ 1 (a `gemv`).
/// Backward spreads each dy evenly: dx[n, h, w, c] = dy[n, c] / HW.
public final class GlobalAvgPool: Layer {
    private var inputShape: [Int] = []
    private let ones = Tensor(zeros: [0])

    public init() {}

    public var namedParameters: [(name: String, parameter: Parameter)] { [] }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 4, input[1] > 0, input[2] > 0 else {
            throw EngineError.shapeMismatch(layer: "GlobalAvgPool", expected: "[N, H, W, C] (NHWC)", got: input)
        }
        return [input[0], input[3]]
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        let n = x.shape[0], pixels = x.shape[1] * x.shape[2], c = x.shape[3]
        inputShape = x.shape
        if ones.count != pixels {
            ones.resize([pixels])
            ones.fill(1)
        }
        for b in 0..<n {
            BLAS.gemv(trans: true, m: pixels, n: c, alpha: 1 / Float(pixels), a: x.data + b * pixels * c, lda: c,
                      x: ones.data, beta: 0, y: y.data + b * c)
        }
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        guard let dx else { return }
        precondition(dx.shape == inputShape, "GlobalAvgPool.backward before forward")
        let n = dx.shape[0], pixels = dx.shape[1] * dx.shape[2], c = dx.shape[3]
        let scale = 1 / Float(pixels)
        let dxp = dx.data, dyp = dy.data
        for b in 0..<n {
            let g = dyp + b * c
            for p in 0..<pixels {
                let d = dxp + (b * pixels + p) * c
                for ch in 0..<c { d[ch] = g[ch] * scale }
            }
        }
    }

    public func copy() -> GlobalAvgPool { GlobalAvgPool() }
}
