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
/// whose columns fit `columnBudget` floats; when each thread's share of the batch fits in one chunk,
/// `backward` reuses the columns from `forward`, otherwise it rebuilds them chunk by chunk.
///
/// Backward: dW = dYᵀ · col, chunk by chunk. dx, with stride 1 (and at least 16 input channels), is itself a
/// convolution, of dY with the kernel flipped and transposed and padding k − 1 − p: im2col of dY, then one GEMM
/// writes dx; otherwise dcol = dY · W and col2im scatters it back. Either way dx can be added to another
/// gradient as it is written (the residual block's shortcut), instead of in a pass of its own.
///
/// Threads: the chunks are shared out among `Threads.parallelism` parts that run side by side, each with its
/// own column buffer and single-threaded OpenBLAS (forward: chunks are independent; backward: each part sums
/// its chunks' dW into its own buffer, added up in part order afterwards, and writes dx for its own images).
/// Inside a task-specific copy (a `Threads.forEach` item) the parallelism is 1 and it is a plain loop.
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
    /// The bound, in floats, of each im2col buffer (one per thread). A chunk holds at least one image,
    /// whatever the budget.
    public var columnBudget = Conv2d.defaultColumnBudget

    private var input: Tensor?
    /// One im2col buffer per part: the part's current chunk; `backward` also writes dcol = dY · W (or the
    /// columns of dY) into it once dW has used it.
    private var cols: [Tensor] = []
    /// Per-part partial sums of dW (then db) for parts 1...; part 0 writes the gradients themselves.
    private var partialGrads: [Tensor] = []
    /// Whether each part's buffer still holds the columns of its whole share of the last input (one chunk per
    /// part, not overwritten since).
    private var columnsValid = false
    private let ones = Tensor(zeros: [0])
    /// W flipped and transposed, [in, kh, kw, out] with W'[c, a, b, o] = W[o, k−1−a, k−1−b, c], for a
    /// transposed backward.
    private let flipped = Tensor(zeros: [0])
    /// The work split of the last input: images per chunk, chunks, and parts (threads) the chunks are shared
    /// among, for the input size and parallelism in `planKey`.
    private var chunkImages = 1, chunkCount = 0, partCount = 1
    private var planKey = (n: -1, h: -1, w: -1, parallelism: -1, budget: -1)

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

    /// Whether backward computes dx as a convolution of dY (see `backwardPart`): for stride 1 (a strided one
    /// would convolve a dY dilated with zeros), not pointwise, and with enough input channels, which are that
    /// GEMM's n. Measured (Cooperlake, 1 thread, 256 images): the dx half of backward 47 ms against 50 ms with
    /// dcol + col2im for 28x28x32 → 32, 40 against 42 ms for 14x14x64 → 64; but 4x slower for one input channel.
    private var transposedBackward: Bool {
        stride == 1 && !isPointwise && padding < kernel && inChannels >= 16
    }

    /// Splits `n` images of `h` x `w` into chunks and the chunks among parts, and sizes the per-part buffers.
    ///
    /// A chunk is as many whole images as fit `columnBudget` floats of columns (a pointwise convolution has
    /// no columns: one chunk per part). With several threads there are at least as many chunks as threads and
    /// a multiple of their number where the batch allows, so that the parts are even; part k takes chunks
    /// `Threads.part(k, of: partCount, chunkCount)`. The split depends only on the sizes and the parallelism,
    /// so a thread count always adds dW's partial sums the same way. Allocates only when they change.
    private func plan(n: Int, h: Int, w: Int) {
        let parallel = Threads.parallelism
        guard planKey != (n, h, w, parallel, columnBudget) else { return }
        planKey = (n, h, w, parallel, columnBudget)
        columnsValid = false
        let ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1
        let pixels = ho * wo, k = kernel * kernel * inChannels
        let parts = Swift.max(1, Swift.min(parallel, n))
        var chunks: Int
        if isPointwise {
            chunks = parts
        } else {
            let maxImages = Swift.max(1, Swift.min(n, columnBudget / Swift.max(pixels * k, 1)))
            chunks = (n + maxImages - 1) / maxImages
            chunks = Swift.min(n, (Swift.max(chunks, parts) + parts - 1) / parts * parts)
        }
        chunkImages = n == 0 ? 1 : (n + chunks - 1) / Swift.max(chunks, 1)
        chunkCount = n == 0 ? 0 : (n + chunkImages - 1) / chunkImages
        partCount = Swift.max(1, Swift.min(parts, chunkCount))
        // With a transposed backward, the same buffer later holds the columns of dY (k·k·out per dx pixel).
        let colRows = chunkImages * (transposedBackward ? Swift.max(pixels, h * w) : pixels)
        let colWidth = transposedBackward ? Swift.max(k, kernel * kernel * outChannels) : k
        let colSize = isPointwise ? 0 : colRows * colWidth
        if cols.count != partCount { cols = (0..<partCount).map { _ in Tensor(zeros: [0]) } }
        for c in cols where c.count != colSize { c.resize(isPointwise ? [0] : [colRows, colWidth]) }
        if transposedBackward && flipped.count != outChannels * kernel * kernel * inChannels {
            flipped.resize([inChannels, kernel, kernel, outChannels])
        }
        let gradSize = outChannels * k + outChannels
        if partialGrads.count != partCount - 1 {
            partialGrads = (0..<(partCount - 1)).map { _ in Tensor(zeros: [gradSize]) }
        }
        if bias != nil && ones.count < chunkImages * pixels {
            ones.resize([chunkImages * pixels])
            ones.fill(1)
        }
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        input = x
        plan(n: x.shape[0], h: x.shape[1], w: x.shape[2])
        columnsValid = false
        Threads.forEach(partCount, blas: true, Conv2dPass(layer: self, forward: true, x: x, y: y, dx: nil, base: nil, reuse: false))
        columnsValid = !isPointwise && chunkCount == partCount
    }

    /// Forward, the chunks of part `p`: Y[rows, out] = col · Wᵀ (+ b) chunk by chunk.
    fileprivate func forwardPart(_ p: Int, x: Tensor, y: Tensor) {
        let n = x.shape[0], h = x.shape[1], w = x.shape[2]
        let ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1
        let pixels = ho * wo, k = kernel * kernel * inChannels, out = outChannels
        let wp = UnsafePointer(weight.value.data), bp = bias.map { UnsafePointer($0.value.data) }
        for c in Threads.part(p, of: partCount, chunkCount) {
            let b0 = c * chunkImages, b1 = Swift.min(n, b0 + chunkImages), rows = (b1 - b0) * pixels
            let yc = y.data + b0 * pixels * out
            // With a bias, start every row from it and add the product (beta = 1): one pass instead of two.
            if let bp { for r in 0..<rows { (yc + r * out).update(from: bp, count: out) } }
            let a: UnsafePointer<Float>
            if isPointwise {
                a = UnsafePointer(x.data + b0 * pixels * k)
            } else {
                im2col(x, images: b0..<b1, into: cols[p].data)
                a = UnsafePointer(cols[p].data)
            }
            BLAS.gemm(transB: true, m: rows, n: out, k: k, a: a, lda: k, b: wp, ldb: k, beta: bp == nil ? 0 : 1,
                      c: yc, ldc: out)
        }
    }

    /// What `backward` does with the input gradient it computes.
    enum InputGradient {
        /// dx = the convolution's input gradient.
        case overwrite
        /// dx += it (dx already holds another path's gradient).
        case accumulate
        /// dx = `base` + it (`base` has dx's shape).
        case adding(Tensor)
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        backward(dy, dx: dx, mode: .overwrite)
    }

    /// `backward`, with the input gradient overwriting `dx`, added to it, or added to another tensor.
    func backward(_ dy: Tensor, dx: Tensor?, mode: InputGradient) {
        guard let x = input else { preconditionFailure("Conv2d.backward before forward") }
        let n = x.shape[0], h = x.shape[1], w = x.shape[2]
        let ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1
        let pixels = ho * wo, k = kernel * kernel * inChannels, out = outChannels
        guard n * pixels > 0 else {
            // No rows (an empty batch): the gradients are zero; BLAS would leave them untouched.
            weight.grad.fill(0)
            bias?.grad.fill(0)
            if let dx {
                switch mode {
                case .overwrite: dx.fill(0)
                case .accumulate: break
                case let .adding(base): dx.copy(from: base)
                }
            }
            return
        }
        plan(n: n, h: h, w: w)   // sized by forward already, unless the parallelism changed since
        let base: UnsafePointer<Float>?
        switch mode {
        case .overwrite: base = nil
        case .accumulate: base = dx.map { UnsafePointer($0.data) }
        case let .adding(t):
            precondition(dx == nil || t.count == dx!.count, "Conv2d.backward: the added gradient has another size")
            base = UnsafePointer(t.data)
        }
        if dx != nil && transposedBackward {
            let wp = weight.value.data, fp = flipped.data, kk = kernel, cin = inChannels
            for o in 0..<out {
                for a in 0..<kk {
                    for b in 0..<kk {
                        let src = wp + ((o * kk + a) * kk + b) * cin
                        let dst = fp + ((kk - 1 - a) * kk + (kk - 1 - b)) * out + o
                        for c in 0..<cin { dst[c * kk * kk * out] = src[c] }
                    }
                }
            }
        }
        Threads.forEach(partCount, blas: true,
                        Conv2dPass(layer: self, forward: false, x: x, y: dy, dx: dx, base: base, reuse: columnsValid))
        if dx != nil { columnsValid = false }
        // dW = Σ of the parts' partial sums, in part order.
        let gw = weight.grad.data, gb = bias?.grad.data
        for q in partialGrads.indices {
            let s = UnsafePointer(partialGrads[q].data)
            Vector.add(gw, s, out * k)
            if let gb { Vector.add(gb, s + out * k, out) }
        }
    }

    /// Backward, the chunks of part `p`: its partial dW (and db), and dx for its images.
    fileprivate func backwardPart(_ p: Int, x: Tensor, dy: Tensor, dx: Tensor?, base: UnsafePointer<Float>?,
                                  reuse: Bool) {
        let n = x.shape[0], h = x.shape[1], w = x.shape[2]
        let ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1
        let pixels = ho * wo, k = kernel * kernel * inChannels, out = outChannels
        let wp = UnsafePointer(weight.value.data)
        let dW = p == 0 ? weight.grad.data : partialGrads[p - 1].data
        let db = bias == nil ? nil : (p == 0 ? bias!.grad.data : partialGrads[p - 1].data + out * k)
        var first = true
        for c in Threads.part(p, of: partCount, chunkCount) {
            let b0 = c * chunkImages, b1 = Swift.min(n, b0 + chunkImages), rows = (b1 - b0) * pixels
            let dyc = UnsafePointer(dy.data + b0 * pixels * out)
            let a: UnsafePointer<Float>
            if isPointwise {
                a = UnsafePointer(x.data + b0 * pixels * k)
            } else {
                if !reuse { im2col(x, images: b0..<b1, into: cols[p].data) }
                a = UnsafePointer(cols[p].data)
            }
            // dW (+)= dYᵀ · col, db (+)= dYᵀ 1, summed over the part's chunks
            let beta: Float = first ? 0 : 1
            BLAS.gemm(transA: true, m: out, n: k, k: rows, a: dyc, lda: out, b: a, ldb: k, beta: beta,
                      c: dW, ldc: k)
            if let db {
                BLAS.gemv(trans: true, m: rows, n: out, a: dyc, lda: out, x: ones.data, beta: beta, y: db)
            }
            first = false
            guard let dx else { continue }
            if isPointwise {
                // dx = dY W (+ base)
                let dxc = dx.data + b0 * pixels * k
                var beta: Float = 0
                if let base {
                    if base != UnsafePointer(dx.data) { dxc.update(from: base + b0 * pixels * k, count: rows * k) }
                    beta = 1
                }
                BLAS.gemm(m: rows, n: k, k: out, a: dyc, lda: out, b: wp, ldb: k, beta: beta, c: dxc, ldc: k)
            } else if transposedBackward {
                // Stride 1: dx is the convolution of dY (padding k − 1 − p) with W flipped, W' — im2col of dY
                // written over the columns (dW no longer needs them), then dx[rows, in] = col(dY) · W'ᵀ (+ base),
                // so dx is written once, by the GEMM, and nothing is scattered.
                let kk = kernel * kernel * out, dxRows = (b1 - b0) * h * w
                Self.im2col(UnsafePointer(dy.data), height: ho, width: wo, channels: out, kernel: kernel, stride: 1,
                            padding: kernel - 1 - padding, images: b0..<b1, into: cols[p].data)
                let dxc = dx.data + b0 * h * w * inChannels
                var beta: Float = 0
                if let base {
                    if base != UnsafePointer(dx.data) {
                        dxc.update(from: base + b0 * h * w * inChannels, count: dxRows * inChannels)
                    }
                    beta = 1
                }
                BLAS.gemm(transB: true, m: dxRows, n: inChannels, k: kk, a: cols[p].data, lda: kk,
                          b: flipped.data, ldb: kk, beta: beta, c: dxc, ldc: inChannels)
            } else {
                // dcol = dY · W, written over the columns (dW no longer needs them), then scattered back.
                BLAS.gemm(m: rows, n: k, k: out, a: dyc, lda: out, b: wp, ldb: k, beta: 0, c: cols[p].data, ldc: k)
                col2im(UnsafePointer(cols[p].data), into: dx, images: b0..<b1, base: base)
            }
        }
    }

    /// The valid kernel columns [lo, hi) of an output column whose window starts at input column `w0`.
    @inline(__always)
    private func kernelColumns(w0: Int, width: Int) -> (lo: Int, hi: Int) {
        (Swift.max(0, -w0), Swift.min(kernel, width - w0))
    }

    /// Writes the column matrix of `images` of `x` into `col`: row (b, i, j) holds the (kh, kw, cin) window
    /// of output pixel (i, j), zeros where the window hangs over the padding.
    private func im2col(_ x: Tensor, images: Range<Int>, into col: UnsafeMutablePointer<Float>) {
        Self.im2col(UnsafePointer(x.data), height: x.shape[1], width: x.shape[2], channels: inChannels,
                    kernel: kernel, stride: stride, padding: padding, images: images, into: col)
    }

    /// im2col of NHWC images of `height` x `width` x `channels` at `src`, for a `kernel` x `kernel` window.
    private static func im2col(_ src: UnsafePointer<Float>, height h: Int, width w: Int, channels c: Int,
                               kernel: Int, stride: Int, padding: Int, images: Range<Int>,
                               into col: UnsafeMutablePointer<Float>) {
        let ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1
        let k = kernel * kernel * c, run = kernel * c
        var dst = col
        for b in images {
            let image = src + b * h * w * c
            for i in 0..<ho {
                let h0 = i * stride - padding
                for j in 0..<wo {
                    let w0 = j * stride - padding
                    // The valid kernel columns [lo, hi) of the window.
                    let lo = Swift.max(0, -w0), hi = Swift.min(kernel, w - w0)
                    if c == 1 {
                        // One channel (a first layer on grey images): element by element, where a copy call
                        // per run of `kernel` floats would cost more than the copy.
                        for kh in 0..<kernel {
                            let ih = h0 + kh, d = dst + kh * kernel
                            let rowValid = ih >= 0 && ih < h
                            for kw in 0..<kernel {
                                let iw = w0 + kw
                                d[kw] = rowValid && iw >= 0 && iw < w ? image[ih * w + iw] : 0
                            }
                        }
                        dst += k
                        continue
                    }
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

    /// The adjoint of `im2col`: sets `images` of `dx` to `base` (or zero) plus the sum, over every window an
    /// input pixel is in, of its entries of `dcol` (the chunk's rows of dL/dcol).
    ///
    /// It scatters, reading `dcol` in order, window after window. An input row is set (to zero, or to `base`'s
    /// row; `base` may be `dx` itself, which accumulates) just before the first window that reaches it, so each
    /// row is written while it is still in cache rather than cleared in a pass of its own.
    private func col2im(_ dcol: UnsafePointer<Float>, into dx: Tensor, images: Range<Int>,
                        base: UnsafePointer<Float>?) {
        let h = dx.shape[1], w = dx.shape[2], c = inChannels
        let ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1
        let k = kernel * kernel * c, run = kernel * c, rowSize = w * c
        var src = dcol
        for b in images {
            let image = dx.data + b * h * rowSize
            let baseImage = base.map { $0 + b * h * rowSize }
            var ready = 0   // input rows 0..<ready are set
            @inline(__always) func prepare(upTo end: Int) {
                while ready < end {
                    let d = image + ready * rowSize
                    if let baseImage {
                        let s = baseImage + ready * rowSize
                        if s != UnsafePointer(d) { Vector.copy(d, s, rowSize) }
                    } else {
                        d.update(repeating: 0, count: rowSize)
                    }
                    ready += 1
                }
            }
            for i in 0..<ho {
                let h0 = i * stride - padding
                prepare(upTo: Swift.min(h, h0 + kernel))
                for j in 0..<wo {
                    let w0 = j * stride - padding
                    let (lo, hi) = kernelColumns(w0: w0, width: w)
                    if hi > lo {
                        for kh in 0..<kernel {
                            let ih = h0 + kh
                            guard ih >= 0, ih < h else { continue }
                            Vector.add(image + (ih * w + w0 + lo) * c, src + kh * run + lo * c, (hi - lo) * c)
                        }
                    }
                    src += k
                }
            }
            prepare(upTo: h)   // rows no window reaches
        }
    }

    public func copy() -> Conv2d {
        let c = Conv2d(weight: weight.copy(), bias: bias?.copy(), stride: stride, padding: padding)
        c.columnBudget = columnBudget
        return c
    }
}

/// Part k of a convolution's forward (y the output) or backward (y = dy).
private struct Conv2dPass: ParallelItems {
    let layer: Conv2d
    let forward: Bool
    let x: Tensor, y: Tensor, dx: Tensor?
    let base: UnsafePointer<Float>?
    let reuse: Bool

    func item(_ k: Int) {
        if forward {
            layer.forwardPart(k, x: x, y: y)
        } else {
            layer.backwardPart(k, x: x, dy: y, dx: dx, base: base, reuse: reuse)
        }
    }
}
