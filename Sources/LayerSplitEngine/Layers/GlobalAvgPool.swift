/// The mean over all pixels of each channel: [N, H, W, C] → [N, C], y[n, c] = (1/HW) Σ_{h, w} x[n, h, w, c].
///
/// This is how a ResNet reduces its last feature map to a vector for the classifier, whatever the image size.
/// One image is an HW x C matrix X, so its output is the matrix-vector product y = (1/HW) Xᵀ 1 (a `gemv`).
/// Backward spreads each dy evenly: dx[n, h, w, c] = dy[n, c] / HW. Both split the images over the threads.
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
        // Images split over the threads, each part's gemv calls with single-threaded OpenBLAS.
        let pass = GlobalAvgPoolPass(forward: true, images: n, pixels: pixels, channels: c,
                                     parts: Swift.min(n, Threads.parts(x.count, minimum: 1 << 15)),
                                     x: UnsafePointer(x.data), y: y.data, ones: UnsafePointer(ones.data))
        Threads.forEach(pass.parts, blas: true, pass)
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        guard let dx else { return }
        precondition(dx.shape == inputShape, "GlobalAvgPool.backward before forward")
        let n = dx.shape[0], pixels = dx.shape[1] * dx.shape[2], c = dx.shape[3]
        let pass = GlobalAvgPoolPass(forward: false, images: n, pixels: pixels, channels: c,
                                     parts: Swift.min(n, Threads.parts(dx.count, minimum: 1 << 15)),
                                     x: UnsafePointer(dy.data), y: dx.data, ones: nil)
        Threads.forEach(pass.parts, blas: false, pass)
    }

    public func copy() -> GlobalAvgPool { GlobalAvgPool() }
}

/// Forward (y = the images' means, by gemv) or backward (y = dx spread from x = dy), over a part of the images.
private struct GlobalAvgPoolPass: ParallelItems {
    let forward: Bool
    let images: Int, pixels: Int, channels: Int, parts: Int
    let x: UnsafePointer<Float>
    let y: UnsafeMutablePointer<Float>
    let ones: UnsafePointer<Float>?

    func item(_ k: Int) {
        let c = channels, scale = 1 / Float(pixels)
        for b in Threads.part(k, of: parts, images) {
            if forward {
                BLAS.gemv(trans: true, m: pixels, n: c, alpha: scale, a: x + b * pixels * c, lda: c,
                          x: ones!, beta: 0, y: y + b * c)
            } else {
                let g = x + b * c
                for p in 0..<pixels {
                    let d = y + (b * pixels + p) * c
                    for ch in 0..<c { d[ch] = g[ch] * scale }
                }
            }
        }
    }
}
