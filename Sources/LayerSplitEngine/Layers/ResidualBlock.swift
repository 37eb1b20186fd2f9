/// The basic residual block of He et al. 2016 (ResNet-18/34), NHWC:
///
///     h   = ReLU(BN₁(conv₁(x)))           conv₁: 3x3, in → out, stride s, padding 1, no bias
///     r   = BN₂(conv₂(h))                 conv₂: 3x3, out → out, stride 1, padding 1, no bias
///     sc  = x                             when in == out and s == 1 (identity shortcut)
///         = BN_sc(conv_sc(x))             otherwise (projection: 1x1, in → out, stride s, no bias)
///     y   = ReLU(r + sc)
///
/// The convolutions have no bias because each BN's shift β replaces it. Parameter names follow the
/// structure (`conv1.weight`, `bn1.weight`, …, `shortcut.conv.weight`, `shortcut.bn.bias`), as do the BN
/// buffers (`bn1.running_mean`, …).
///
/// Backward, with g = dy ⊙ [r + sc > 0] (the final ReLU): the residual branch runs back through BN₂, conv₂,
/// the inner ReLU (⊙ [h > 0]), BN₁ and conv₁ into dx; the shortcut adds g itself (identity) or g back
/// through BN_sc and conv_sc. Each BN keeps its own x̂, so none of them needs its input after forward.
/// The block owns its intermediate activations and gradients, sized on the first step and reused.
///
/// The activations are large (a 256 x 28 x 28 x 32 batch is 26 MB), so the elementwise steps ride along in
/// the passes that BN and the convolutions make anyway: forward, the inner ReLU is BN₁'s output pass and
/// r + sc and the final ReLU are BN₂'s (r + sc is never stored: y's sign is the final ReLU's mask, and y is
/// kept, like `ReLU` keeps its output); backward, BN₂'s first pass forms g from dy and y, BN₁ recomputes the
/// inner ReLU's mask from its x̂ (h > 0 ⟺ γ₁ x̂₁ + β₁ > 0), and the shortcut's gradient is added to dx as
/// conv₁ writes dx (identity: g) or as conv_sc adds its own part into dx (projection).
public final class ResidualBlock: Layer {
    public let inChannels: Int
    public let outChannels: Int
    public let stride: Int
    public let conv1: Conv2d
    public let bn1: BatchNorm
    public let conv2: Conv2d
    public let bn2: BatchNorm
    /// The projection shortcut, or nil for the identity.
    public let shortcutConv: Conv2d?
    public let shortcutBN: BatchNorm?

    // Forward: conv outputs (reused by each conv in turn: BN keeps x̂, not its input), h, BN_sc(·).
    private let convOut = Tensor(zeros: [0])
    private let hidden = Tensor(zeros: [0])
    private let shortcutOut = Tensor(zeros: [0])
    /// The block's output y = ReLU(r + sc) from forward (the caller's tensor, unchanged until backward, as for
    /// `ReLU`): its sign is the final ReLU's mask, so r + sc need not be kept.
    private var output: Tensor?
    // Backward: g and two gradients of the block's inner activations.
    private let gradOut = Tensor(zeros: [0])
    private let grad1 = Tensor(zeros: [0])
    private let grad2 = Tensor(zeros: [0])

    public convenience init(inChannels: Int, outChannels: Int, stride: Int = 1, rng: inout some RandomNumberGenerator) {
        let projection = inChannels != outChannels || stride != 1
        let conv1 = Conv2d(inChannels: inChannels, outChannels: outChannels, kernel: 3, stride: stride,
                           padding: 1, rng: &rng)
        let conv2 = Conv2d(inChannels: outChannels, outChannels: outChannels, kernel: 3, padding: 1, rng: &rng)
        let shortcutConv = projection
            ? Conv2d(inChannels: inChannels, outChannels: outChannels, kernel: 1, stride: stride, padding: 0,
                     rng: &rng)
            : nil
        self.init(conv1: conv1, bn1: BatchNorm(channels: outChannels), conv2: conv2,
                  bn2: BatchNorm(channels: outChannels), shortcutConv: shortcutConv,
                  shortcutBN: projection ? BatchNorm(channels: outChannels) : nil)
    }

    /// A block from its parts (used by `copy()`). The shortcut is the identity when both are nil.
    public init(conv1: Conv2d, bn1: BatchNorm, conv2: Conv2d, bn2: BatchNorm,
                shortcutConv: Conv2d?, shortcutBN: BatchNorm?) {
        let out = conv1.outChannels
        precondition(conv1.kernel == 3 && conv1.padding == 1 && conv2.kernel == 3 && conv2.padding == 1
                     && conv2.stride == 1, "ResidualBlock convolutions are 3x3 with padding 1 (conv2 stride 1)")
        precondition(bn1.channels == out && conv2.inChannels == out && conv2.outChannels == out
                     && bn2.channels == out, "ResidualBlock: channel counts of the residual branch disagree")
        precondition((shortcutConv == nil) == (shortcutBN == nil), "ResidualBlock: shortcut needs conv and BN")
        if let shortcutConv, let shortcutBN {
            precondition(shortcutConv.kernel == 1 && shortcutConv.padding == 0
                         && shortcutConv.stride == conv1.stride && shortcutConv.inChannels == conv1.inChannels
                         && shortcutConv.outChannels == out && shortcutBN.channels == out,
                         "ResidualBlock: the projection is a 1x1 conv with conv1's stride and channels, then BN")
        } else {
            precondition(conv1.inChannels == out && conv1.stride == 1,
                         "ResidualBlock: an identity shortcut needs in == out and stride 1")
        }
        inChannels = conv1.inChannels
        outChannels = out
        stride = conv1.stride
        self.conv1 = conv1
        self.bn1 = bn1
        self.conv2 = conv2
        self.bn2 = bn2
        self.shortcutConv = shortcutConv
        self.shortcutBN = shortcutBN
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        var all = prefixed("conv1", conv1.namedParameters) + prefixed("bn1", bn1.namedParameters)
            + prefixed("conv2", conv2.namedParameters) + prefixed("bn2", bn2.namedParameters)
        if let shortcutConv, let shortcutBN {
            all += prefixed("shortcut.conv", shortcutConv.namedParameters)
                + prefixed("shortcut.bn", shortcutBN.namedParameters)
        }
        return all
    }

    public var namedBuffers: [(name: String, tensor: Tensor)] {
        var all = prefixed("bn1", bn1.namedBuffers) + prefixed("bn2", bn2.namedBuffers)
        if let shortcutBN { all += prefixed("shortcut.bn", shortcutBN.namedBuffers) }
        return all
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        do {
            return try conv1.outputShape(for: input)
        } catch {
            throw EngineError.shapeMismatch(
                layer: "ResidualBlock(\(inChannels)→\(outChannels), s=\(stride))",
                expected: "[N, H, W, \(inChannels)] (NHWC)", got: input)
        }
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        let shape = y.shape
        convOut.resize(shape)
        hidden.resize(shape)

        conv1.forward(x, into: convOut, training: training)
        bn1.forward(convOut, into: hidden, training: training, relu: true, residual: nil)    // h
        var shortcut = x
        if let shortcutConv, let shortcutBN {
            shortcutOut.resize(shape)
            shortcutConv.forward(x, into: convOut, training: training)
            shortcutBN.forward(convOut, into: shortcutOut, training: training)
            shortcut = shortcutOut
        }
        conv2.forward(hidden, into: convOut, training: training)
        // y = ReLU(BN₂(conv₂(h)) + sc), in BN₂'s pass.
        bn2.forward(convOut, into: y, training: training, relu: true, residual: shortcut)
        output = y
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        let shape = dy.shape
        guard let y = output, y.shape == shape else { preconditionFailure("ResidualBlock.backward before forward") }
        gradOut.resize(shape)
        grad1.resize(shape)
        grad2.resize(shape)

        // Residual branch: g = dy ⊙ [y > 0] (written to gradOut in BN₂'s first pass) → BN₂ → conv₂ → inner
        // ReLU (its mask recomputed by BN₁ from x̂₁) → BN₁ → conv₁ (into dx).
        bn2.backward(dy, dx: grad1, mask: .output(y, maskedInto: gradOut))
        conv2.backward(grad1, dx: grad2)
        bn1.backward(grad2, dx: grad1, mask: .ownOutput)
        if let shortcutConv, let shortcutBN {
            // dx = conv₁ᵀ(·) + conv_scᵀ(BN_scᵀ(g)); the shortcut's convolution adds its part into dx. Its
            // parameter gradients are needed even without dx.
            conv1.backward(grad1, dx: dx)
            shortcutBN.backward(gradOut, dx: grad2)
            shortcutConv.backward(grad2, dx: dx, mode: .accumulate)
        } else {
            // dx = conv₁ᵀ(·) + g, the identity's part added as conv₁ writes dx.
            conv1.backward(grad1, dx: dx, mode: .adding(gradOut))
        }
    }

    public func copy() -> ResidualBlock {
        ResidualBlock(conv1: conv1.copy(), bn1: bn1.copy(), conv2: conv2.copy(), bn2: bn2.copy(),
                      shortcutConv: shortcutConv?.copy(), shortcutBN: shortcutBN?.copy())
    }
}
