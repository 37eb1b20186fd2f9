/// A 2-D convolution over NHWC images:
/// y[n, i, j, o] = b[o] + Σ_{kh, kw, c} W[o, kh, kw, c] · x[n, i·s − p + kh, j·s − p + kw, c],
/// with zero padding p on every side, stride s and output size Ho = (H + 2p − k)/s + 1 (likewise Wo).
///
/// `weight` is `[out, kh, kw, in]` (OHWI), so that one output channel's filter is one contiguous row in the
/// same (kh, kw, cin) order as an im2col row. A PyTorch `nn.Conv2d` weight `[out, in, kh, kw]` becomes this
/// layout with `permute(0, 2, 3, 1)` (and back with `permute(0, 3, 1, 2)`). `bias` is `[out]`, or absent
/// (a convolution followed by BatchNorm needs none: BN's shift replaces it).
///
/// Why im2col: the convolution becomes one GEMM per chunk of images, where OpenBLAS does the arithmetic.
/// The column matrix has one row per output pixel and k·k·in columns ordered (kh, kw, cin); since channels
/// are innermost in NHWC, the columns of one kernel row (fixed kh) are a single contiguous run of the input,
/// so building a row is k copies (plus zeros at the padded border). Then
///     Y[N·Ho·Wo, out] = col · Wᵀ,
/// whose rows are already the NHWC output. A 1x1, stride-1, unpadded convolution skips im2col: its input
/// is its own column matrix.
///
/// The column matrix is k·k times larger than the input, so the batch is processed in chunks of whole images
/// whose columns fit `columnBudget` floats; when the whole batch fits, `backward` reuses the columns from
/// `forward`, otherwise it rebuilds them chunk by chunk.
///
/// Initialisation: W ~ N(0, 2/(k·k·in)) (He et al. 2015, fan-in of one output), b = 0.
public final class Conv2d: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    public let weight: Parameter
    public let bias: Parameter?

    /// The default bound, in floats, of the im2col buffer: 2²⁰ floats (4 MB), which keeps a chunk's columns in
    /// cache between im2col and the GEMM that reads them. Measured for a 64x28x28x32 → 32, 3x3, padding-1
    /// convolution, forward + backward with dx (Cooperlake, OpenBLAS, best of 30): 2 threads 23 ms with this
    /// budget (4 images per chunk) against 36 ms for the whole batch in one chunk (58 MB of columns, reused
    /// by backward); 1 thread 36 ms against 50 ms. Smaller chunks (1–2 images) are no faster on one thread
    /// and slower on two (each GEMM becomes too small to split).
    public static let defaultColumnBudget = 1 << 20
    /// The bound, in floats, of the im2col buffer. A chunk holds at least one image, whatever the budget.
    public var columnBudget = Conv2d.defaultColumnBudget

    private var input: Tensor?
    /// im2col of the current chunk; `backward` also writes dcol = dY · W into it once dW has used it.
    private let col = Tensor(zeros: [0])
    /// Whether `col` still holds the columns of the whole last input (one chunk, not overwritten since).
    private var columnsValid = false
    private let ones = Tensor(zeros: [0])

    public convenience init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int,
                bias: Bool = false, rng: inout some RandomNumberGenerator) {
        precondition(inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0,
                     "Conv2d needs positive channels, kernel and stride, and padding >= 0")
        let w = Tensor(zeros: [outChannels, kernel, kernel, inChannels])
        w.fillNormal(std: (2 / Float(kernel * kernel * inChannels)).squareRoot(), rng: &rng)
        self.init(weight: Parameter(w, decays: true),
                  bias: bias ? Parameter(Tensor(zeros: [outChannels]), decays: false) : nil,
                  stride: stride, padding: padding)
    }

    /// A layer with the given parameters (used by `copy()` and when loading weights). `weight` is
    /// `[out, k, k, in]`, `bias` `[out]` or nil.
    public init(weight: Parameter, bias: Parameter?, stride: Int, padding: Int) {
        let s = weight.value.shape
        precondition(s.count == 4 && s[1] == s[2] && s.allSatisfy { $0 > 0 },
                     "Conv2d weight must be [out, k, k, in], got \(s)")
        precondition(bias == nil || bias!.value.shape == [s[0]], "Conv2d bias must be [\(s[0])]")
        precondition(stride > 0 && padding >= 0, "Conv2d needs stride > 0 and padding >= 0")
        self.outChannels = s[0]
        self.kernel = s[1]
        self.inChannels = s[3]
        self.stride = stride
        self.padding = padding
        self.weight = weight
        self.bias = bias
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        if let bias { return [("weight", weight), ("bias", bias)] }
        return [("weight", weight)]
    }

    private var name: String {
        "Conv2d(\(inChannels)→\(outChannels), k=\(kernel), s=\(stride), p=\(padding))"
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard input.count == 4, input[3] == inChannels else {
            throw EngineError.shapeMismatch(layer: name, expected: "[N, H, W, \(inChannels)] (NHWC)", got: input)
        }
        let h = input[1] + 2 * padding, w = input[2] + 2 * padding
        guard h >= kernel, w >= kernel else {
            throw EngineError.shapeMismatch(
                layer: name,
                expected: "[N, H, W, \(inChannels)] with H and W at least \(Swift.max(kernel - 2 * padding, 1)) "
                    + "(the \(kernel)x\(kernel) kernel is larger than the padded \(h)x\(w) input)",
                got: input)
        }
        return [input[0], (h - kernel) / stride + 1, (w - kernel) / stride + 1, outChannels]
    }

    /// A 1x1, stride-1, unpadded convolution: the input is already the column matrix.
    private var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }

    /// Images per chunk for `n` images whose columns take `perImage` floats each.
    private func imagesPerChunk(_ n: Int, perImage: Int) -> Int {
        Swift.max(1, Swift.min(n, columnBudget / Swift.max(perImage, 1)))
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        input = x
        columnsValid = false
        let n = x.shape[0], h = x.shape[1], w = x.shape[2]
        let ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1
        let pixels = ho * wo, k = kernel * kernel * inChannels
        // With a bias, start every row from it and add the product (beta = 1): one pass instead of two.
        if let bias {
            for r in 0..<(n * pixels) {
                (y.data + r * outChannels).update(from: bias.value.data, count: outChannels)
            }
        }
        let beta: Float = bias == nil ? 0 : 1
        if isPointwise {
            BLAS.gemm(transB: true, m: n * pixels, n: outChannels, k: k, a: x.data, lda: k,
                      b: weight.value.data, ldb: k, beta: beta, c: y.data, ldc: outChannels)
            return
        }
        let chunk = imagesPerChunk(n, perImage: pixels * k)
        // Only when the size changes: an array literal allocates, and a steady-state step must not.
        if col.count != chunk * pixels * k { col.resize([chunk * pixels, k]) }
        for b0 in Swift.stride(from: 0, to: n, by: chunk) {
            let b1 = Swift.min(n, b0 + chunk), rows = (b1 - b0) * pixels
            im2col(x, images: b0..<b1)
            // Y[rows, out] = col · Wᵀ
            BLAS.gemm(transB: true, m: rows, n: outChannels, k: k, a: col.data, lda: k,
                      b: weight.value.data, ldb: k, beta: beta,
                      c: y.data + b0 * pixels * outChannels, ldc: outChannels)
        }
        columnsValid = chunk >= n
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        guard let x = input else { preconditionFailure("Conv2d.backward before forward") }
        let n = x.shape[0], h = x.shape[1], w = x.shape[2]
        let ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1
        let pixels = ho * wo, k = kernel * kernel * inChannels
        guard n * pixels > 0 else {
            // No rows (an empty batch): the gradients are zero; BLAS would leave them untouched.
            weight.grad.fill(0)
            bias?.grad.fill(0)
            return
        }

        // db = column sums of dY = dYᵀ 1
        if let bias {
            if ones.count != n * pixels {
                ones.resize([n * pixels])
                ones.fill(1)
            }
            BLAS.gemv(trans: true, m: n * pixels, n: outChannels, a: dy.data, lda: outChannels, x: ones.data,
                      beta: 0, y: bias.grad.data)
        }

        if isPointwise {
            // dW = dYᵀ x, dx = dY W
            BLAS.gemm(transA: true, m: outChannels, n: k, k: n * pixels, a: dy.data, lda: outChannels,
                      b: x.data, ldb: k, beta: 0, c: weight.grad.data, ldc: k)
            if let dx {
                BLAS.gemm(m: n * pixels, n: k, k: outChannels, a: dy.data, lda: outChannels,
                          b: weight.value.data, ldb: k, beta: 0, c: dx.data, ldc: k)
            }
            return
        }

        let chunk = imagesPerChunk(n, perImage: pixels * k)
        if col.count != chunk * pixels * k { col.resize([chunk * pixels, k]) }  // sized by forward already
        for b0 in Swift.stride(from: 0, to: n, by: chunk) {
            let b1 = Swift.min(n, b0 + chunk), rows = (b1 - b0) * pixels
            let dyChunk = dy.data + b0 * pixels * outChannels
            if !columnsValid { im2col(x, images: b0..<b1) }
            // dW (+)= dYᵀ · col, summed over chunks
            BLAS.gemm(transA: true, m: outChannels, n: k, k: rows, a: dyChunk, lda: outChannels,
                      b: col.data, ldb: k, beta: b0 == 0 ? 0 : 1, c: weight.grad.data, ldc: k)
            guard let dx else { continue }
            // dcol = dY · W, written over the columns (dW no longer needs them), then scattered back.
            BLAS.gemm(m: rows, n: k, k: outChannels, a: dyChunk, lda: outChannels,
                      b: weight.value.data, ldb: k, beta: 0, c: col.data, ldc: k)
            columnsValid = false
            col2im(into: dx, images: b0..<b1)
        }
    }

    /// The valid kernel columns [lo, hi) of an output column whose window starts at input column `w0`.
    @inline(__always)
    private func kernelColumns(w0: Int, width: Int) -> (lo: Int, hi: Int) {
        (Swift.max(0, -w0), Swift.min(kernel, width - w0))
    }

    /// Writes the column matrix of `images` of `x` into `col`: row (b, i, j) holds the (kh, kw, cin) window
    /// of output pixel (i, j), zeros where the window hangs over the padding.
    private func im2col(_ x: Tensor, images: Range<Int>) {
        let h = x.shape[1], w = x.shape[2], c = inChannels
        let ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1
        let k = kernel * kernel * c, run = kernel * c
        var dst = col.data
        for b in images {
            let image = x.data + b * h * w * c
            for i in 0..<ho {
                let h0 = i * stride - padding
                for j in 0..<wo {
                    let w0 = j * stride - padding
                    let (lo, hi) = kernelColumns(w0: w0, width: w)
                    for kh in 0..<kernel {
                        let d = dst + kh * run
                        let ih = h0 + kh
                        guard ih >= 0, ih < h, hi > lo else {
                            d.update(repeating: 0, count: run)
                            continue
                        }
                        if lo > 0 { d.update(repeating: 0, count: lo * c) }
                        (d + lo * c).update(from: image + (ih * w + w0 + lo) * c, count: (hi - lo) * c)
                        if hi < kernel { (d + hi * c).update(repeating: 0, count: (kernel - hi) * c) }
                    }
                    dst += k
                }
            }
        }
    }

    /// The adjoint of `im2col`: sets `images` of `dx` to the sum, over every window an input pixel is in, of
    /// its entries of dcol (held in `col`).
    private func col2im(into dx: Tensor, images: Range<Int>) {
        let h = dx.shape[1], w = dx.shape[2], c = inChannels
        let ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1
        let k = kernel * kernel * c, run = kernel * c
        (dx.data + images.lowerBound * h * w * c).update(repeating: 0, count: images.count * h * w * c)
        var src = UnsafePointer(col.data)
        for b in images {
            let image = dx.data + b * h * w * c
            for i in 0..<ho {
                let h0 = i * stride - padding
                for j in 0..<wo {
                    let w0 = j * stride - padding
                    let (lo, hi) = kernelColumns(w0: w0, width: w)
                    if hi > lo {
                        for kh in 0..<kernel {
                            let ih = h0 + kh
                            guard ih >= 0, ih < h else { continue }
                            let s = src + kh * run + lo * c
                            let d = image + (ih * w + w0 + lo) * c
                            for t in 0..<((hi - lo) * c) { d[t] += s[t] }
                        }
                    }
                    src += k
                }
            }
        }
    }

    public func copy() -> Conv2d {
        let c = Conv2d(weight: weight.copy(), bias: bias?.copy(), stride: stride, padding: padding)
        c.columnBudget = columnBudget
        return c
    }
}
