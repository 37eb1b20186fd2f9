/// The output shape of a k x k, stride-s, unpadded pooling window over an NHWC input:
/// Ho = (H − k)/s + 1, likewise Wo, channels unchanged.
private func pooledShape(_ input: [Int], kernel: Int, stride: Int, layer: String) throws -> [Int] {
    guard input.count == 4, input[1] >= kernel, input[2] >= kernel, input[3] > 0 else {
        throw EngineError.shapeMismatch(
            layer: layer, expected: "[N, H, W, C] (NHWC) with H and W at least \(kernel)", got: input)
    }
    return [input[0], (input[1] - kernel) / stride + 1, (input[2] - kernel) / stride + 1, input[3]]
}

/// Max pooling over k x k windows with stride s, no padding, each channel on its own:
/// y[n, i, j, c] = max_{a, b < k} x[n, i·s + a, j·s + b, c].
///
/// The gradient flows only to the maximum of each window, so forward records its flat input index (the
/// first maximum on ties) and backward scatters: dx[argmax(e)] += dy[e], with += because windows overlap
/// when s < k. Channels are innermost, so every window element is a contiguous run of C compares.
public final class MaxPool2d: Layer {
    public let kernel: Int
    public let stride: Int
    /// For each output element, the flat index into the input of its window's maximum.
    private var argmax: [Int] = []
    private var inputShape: [Int] = []

    public init(kernel: Int, stride: Int) {
        precondition(kernel > 0 && stride > 0, "MaxPool2d needs a positive kernel and stride")
        self.kernel = kernel
        self.stride = stride
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { [] }

    public func outputShape(for input: [Int]) throws -> [Int] {
        try pooledShape(input, kernel: kernel, stride: stride, layer: "MaxPool2d(k=\(kernel), s=\(stride))")
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        let n = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3]
        let ho = y.shape[1], wo = y.shape[2]
        inputShape = x.shape
        if argmax.count != y.count { argmax = [Int](repeating: 0, count: y.count) }
        let xp = x.data, yp = y.data
        argmax.withUnsafeMutableBufferPointer { idx in
            var o = 0
            for b in 0..<n {
                for i in 0..<ho {
                    for j in 0..<wo {
                        // Start from the window's top-left pixel, then keep the first strict maximum.
                        let first = ((b * h + i * stride) * w + j * stride) * c
                        for ch in 0..<c {
                            yp[o + ch] = xp[first + ch]
                            idx[o + ch] = first + ch
                        }
                        for a in 0..<kernel {
                            for bb in 0..<kernel where a > 0 || bb > 0 {
                                let p = ((b * h + i * stride + a) * w + j * stride + bb) * c
                                for ch in 0..<c where xp[p + ch] > yp[o + ch] {
                                    yp[o + ch] = xp[p + ch]
                                    idx[o + ch] = p + ch
                                }
                            }
                        }
                        o += c
                    }
                }
            }
        }
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        guard let dx else { return }
        precondition(dx.shape == inputShape && argmax.count == dy.count, "MaxPool2d.backward before forward")
        dx.fill(0)
        let dxp = dx.data, dyp = dy.data
        argmax.withUnsafeBufferPointer { idx in
            for e in 0..<dy.count { dxp[idx[e]] += dyp[e] }
        }
    }

    public func copy() -> MaxPool2d { MaxPool2d(kernel: kernel, stride: stride) }
}

/// Average pooling over k x k windows with stride s, no padding, each channel on its own:
/// y[n, i, j, c] = (1/k²) Σ_{a, b < k} x[n, i·s + a, j·s + b, c].
///
/// It is linear, so backward spreads each dy evenly over its window: dx[n, i·s + a, j·s + b, c] += dy/k²
/// (accumulated, since windows overlap when s < k). Nothing of the input is kept.
public final class AvgPool2d: Layer {
    public let kernel: Int
    public let stride: Int
    private var inputShape: [Int] = []

    public init(kernel: Int, stride: Int) {
        precondition(kernel > 0 && stride > 0, "AvgPool2d needs a positive kernel and stride")
        self.kernel = kernel
        self.stride = stride
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { [] }

    public func outputShape(for input: [Int]) throws -> [Int] {
        try pooledShape(input, kernel: kernel, stride: stride, layer: "AvgPool2d(k=\(kernel), s=\(stride))")
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        let n = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3]
        let ho = y.shape[1], wo = y.shape[2]
        inputShape = x.shape
        let scale = 1 / Float(kernel * kernel)
        let xp = x.data, yp = y.data
        var o = 0
        for b in 0..<n {
            for i in 0..<ho {
                for j in 0..<wo {
                    let out = yp + o
                    out.update(repeating: 0, count: c)
                    for a in 0..<kernel {
                        for bb in 0..<kernel {
                            let p = xp + ((b * h + i * stride + a) * w + j * stride + bb) * c
                            for ch in 0..<c { out[ch] += p[ch] }
                        }
                    }
                    for ch in 0..<c { out[ch] *= scale }
                    o += c
                }
            }
        }
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        guard let dx else { return }
        precondition(dx.shape == inputShape, "AvgPool2d.backward before forward")
        let n = dx.shape[0], h = dx.shape[1], w = dx.shape[2], c = dx.shape[3]
        let ho = dy.shape[1], wo = dy.shape[2]
        let scale = 1 / Float(kernel * kernel)
        dx.fill(0)
        let dxp = dx.data, dyp = dy.data
        var o = 0
        for b in 0..<n {
            for i in 0..<ho {
                for j in 0..<wo {
                    let g = dyp + o
                    for a in 0..<kernel {
                        for bb in 0..<kernel {
                            let p = dxp + ((b * h + i * stride + a) * w + j * stride + bb) * c
                            for ch in 0..<c { p[ch] += g[ch] * scale }
                        }
                    }
                    o += c
                }
            }
        }
    }

    public func copy() -> AvgPool2d { AvgPool2d(kernel: kernel, stride: stride) }
}
