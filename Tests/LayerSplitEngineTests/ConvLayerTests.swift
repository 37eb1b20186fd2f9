import LayerSplitEngine
import XCTest
import _MallocCounter

/// Tests of the image layers: Conv2d, BatchNorm, MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, ResidualBlock.
final class ConvLayerTests: XCTestCase {
    // MARK: - Helpers

    private func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let t = Tensor(zeros: shape)
        t.fillNormal(std: 1, rng: &rng)
        return t
    }

    private func run(_ layer: some Layer, _ x: Tensor, training: Bool = true) throws -> Tensor {
        let y = Tensor(zeros: try layer.outputShape(for: x.shape))
        layer.forward(x, into: y, training: training)
        return y
    }

    private func assertClose(_ a: [Float], _ b: [Float], tolerance: Float = 1e-4,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, "element counts differ", file: file, line: line)
        let scale = max(a.map(abs).max() ?? 0, b.map(abs).max() ?? 0, 1)
        let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(diff / scale, tolerance, "max difference \(diff), scale \(scale)",
                                 file: file, line: line)
    }

    /// Direct convolution, NHWC input, OHWI weight: y[n,i,j,o] = b[o] + Σ W[o,kh,kw,c] x[n, i·s−p+kh, j·s−p+kw, c].
    private func referenceConv(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int) -> [Float] {
        let (n, h, w, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, k) = (weight.shape[0], weight.shape[1])
        let ho = (h + 2 * padding - k) / stride + 1, wo = (w + 2 * padding - k) / stride + 1
        var y = [Float](repeating: 0, count: n * ho * wo * cout)
        for b in 0..<n {
            for i in 0..<ho {
                for j in 0..<wo {
                    for o in 0..<cout {
                        var sum = Double(bias?[o] ?? 0)
                        for kh in 0..<k {
                            for kw in 0..<k {
                                let ih = i * stride - padding + kh, iw = j * stride - padding + kw
                                guard ih >= 0, ih < h, iw >= 0, iw < w else { continue }
                                for c in 0..<cin {
                                    sum += Double(weight[((o * k + kh) * k + kw) * cin + c])
                                        * Double(x[((b * h + ih) * w + iw) * cin + c])
                                }
                            }
                        }
                        y[((b * ho + i) * wo + j) * cout + o] = Float(sum)
                    }
                }
            }
        }
        return y
    }

    // MARK: - Conv2d

    func testConv2dMatchesDirectConvolution() throws {
        for (stride, padding) in [(1, 0), (1, 1), (2, 0), (2, 1)] {
            for bias in [false, true] {
                var rng = SplitMix64(seed: 11)
                let conv = Conv2d(inChannels: 3, outChannels: 5, kernel: 3, stride: stride, padding: padding,
                                  bias: bias, rng: &rng)
                conv.bias?.value.fillNormal(std: 1, rng: &rng)
                let x = randomTensor([2, 7, 6, 3], seed: 12)
                let y = try run(conv, x)
                let ho = (7 + 2 * padding - 3) / stride + 1, wo = (6 + 2 * padding - 3) / stride + 1
                XCTAssertEqual(y.shape, [2, ho, wo, 5])
                assertClose(y.values, referenceConv(x, weight: conv.weight.value, bias: conv.bias?.value,
                                                    stride: stride, padding: padding))
            }
        }
    }

    func testPointwiseAndStridedOneByOneConvMatchDirectConvolution() throws {
        for stride in [1, 2] {
            var rng = SplitMix64(seed: 13)
            let conv = Conv2d(inChannels: 4, outChannels: 3, kernel: 1, stride: stride, padding: 0, bias: true,
                              rng: &rng)
            conv.bias?.value.fillNormal(std: 1, rng: &rng)
            let x = randomTensor([3, 5, 5, 4], seed: 14)
            let y = try run(conv, x)
            assertClose(y.values, referenceConv(x, weight: conv.weight.value, bias: conv.bias?.value,
                                                stride: stride, padding: 0))
        }
    }

    /// Chunking the batch (a small column budget) must not change the output or any gradient.
    func testConv2dChunkingGivesTheSameResults() throws {
        var rng = SplitMix64(seed: 15)
        let whole = Conv2d(inChannels: 3, outChannels: 4, kernel: 3, stride: 1, padding: 1, bias: true, rng: &rng)
        let chunked = whole.copy()
        chunked.columnBudget = 1  // one image per chunk
        let x = randomTensor([5, 6, 6, 3], seed: 16)
        let y1 = try run(whole, x), y2 = try run(chunked, x)
        assertClose(y1.values, y2.values, tolerance: 1e-6)
        let dy = randomTensor(y1.shape, seed: 17)
        let dx1 = Tensor(zeros: x.shape), dx2 = Tensor(zeros: x.shape)
        whole.backward(dy, dx: dx1)
        chunked.backward(dy, dx: dx2)
        assertClose(dx1.values, dx2.values, tolerance: 1e-6)
        assertClose(whole.weight.grad.values, chunked.weight.grad.values, tolerance: 1e-5)
        assertClose(whole.bias!.grad.values, chunked.bias!.grad.values, tolerance: 1e-6)
    }

    func testConv2dGradients() {
        let cases: [(kernel: Int, stride: Int, padding: Int, bias: Bool, budget: Int?)] = [
            (3, 1, 1, true, nil), (3, 2, 0, false, nil), (3, 2, 1, true, nil), (3, 1, 1, false, 1),
            (1, 1, 0, true, nil), (1, 2, 0, false, nil), (2, 2, 1, false, nil),
        ]
        for c in cases {
            var rng = SplitMix64(seed: 21)
            let conv = Conv2d(inChannels: 3, outChannels: 4, kernel: c.kernel, stride: c.stride, padding: c.padding,
                              bias: c.bias, rng: &rng)
            if let budget = c.budget { conv.columnBudget = budget }
            conv.bias?.value.fillNormal(std: 0.5, rng: &rng)
            checkGradients(layer: conv, inputShape: [2, 6, 5, 3], training: true)
        }
    }

    func testConv2dOutputShapeErrors() throws {
        var rng = SplitMix64(seed: 1)
        let conv = Conv2d(inChannels: 3, outChannels: 8, kernel: 5, stride: 2, padding: 1, rng: &rng)
        XCTAssertEqual(try conv.outputShape(for: [4, 9, 7, 3]), [4, 4, 3, 8])
        XCTAssertEqual(try conv.outputShape(for: [4, 3, 3, 3]), [4, 1, 1, 8])  // 3 + 2·1 = 5 = k
        for bad in [[4, 9, 3], [4, 9, 9, 4], [4, 2, 9, 3], [4, 9, 2, 3], [9, 9, 3, 4, 1]] {
            XCTAssertThrowsError(try conv.outputShape(for: bad), "\(bad)") { error in
                guard case let .shapeMismatch(layer, _, got) = error as? EngineError else {
                    return XCTFail("expected shapeMismatch, got \(error)")
                }
                XCTAssertTrue(layer.hasPrefix("Conv2d(3→8"), layer)
                XCTAssertEqual(got, bad)
            }
        }
        do {
            _ = try conv.outputShape(for: [1, 2, 2, 3])
            XCTFail("a 5x5 kernel on a padded 4x4 input must throw")
        } catch {
            XCTAssertTrue("\(error)".contains("larger than the padded 4x4 input"), "\(error)")
        }
    }

    func testConv2dParametersAndCopy() throws {
        var rng = SplitMix64(seed: 2)
        let conv = Conv2d(inChannels: 3, outChannels: 6, kernel: 3, padding: 1, rng: &rng)
        XCTAssertEqual(conv.namedParameters.map(\.name), ["weight"])
        XCTAssertEqual(conv.weight.value.shape, [6, 3, 3, 3])
        XCTAssertTrue(conv.weight.decays)
        // He-normal: std √(2/27) ≈ 0.27; 162 samples put the sample std well within ±30 %.
        let v = conv.weight.value.values
        let std = (v.map { $0 * $0 }.reduce(0, +) / Float(v.count)).squareRoot()
        XCTAssertEqual(std, (2 / Float(27)).squareRoot(), accuracy: 0.08)

        var rng2 = SplitMix64(seed: 2)
        let withBias = Conv2d(inChannels: 3, outChannels: 6, kernel: 3, padding: 1, bias: true, rng: &rng2)
        XCTAssertEqual(withBias.namedParameters.map(\.name), ["weight", "bias"])
        XCTAssertFalse(withBias.bias!.decays)

        let copy = withBias.copy()
        XCTAssertEqual(copy.weight.value.values, withBias.weight.value.values)
        copy.weight.value[0] += 1
        copy.bias!.value[0] += 1
        XCTAssertNotEqual(copy.weight.value[0], withBias.weight.value[0])
        XCTAssertNotEqual(copy.bias!.value[0], withBias.bias!.value[0])
    }

    // MARK: - BatchNorm

    func testBatchNormTrainingStatisticsAndRunningUpdate() throws {
        let bn = BatchNorm(channels: 3, momentum: 0.1, epsilon: 1e-5)
        XCTAssertEqual(bn.namedParameters.map(\.name), ["weight", "bias"])
        XCTAssertEqual(bn.namedBuffers.map(\.name), ["running_mean", "running_var"])
        XCTAssertFalse(bn.weight.decays || bn.bias.decays)
        XCTAssertEqual(bn.weight.value.values, [1, 1, 1])
        XCTAssertEqual(bn.runningVar.values, [1, 1, 1])

        let x = randomTensor([2, 3, 4, 3], seed: 31)
        for i in 0..<x.count where i % 3 == 1 { x[i] = x[i] * 4 + 10 }  // channel 1: mean ≈ 10, std ≈ 4
        let y = try run(bn, x, training: true)
        let m = x.count / 3
        for c in 0..<3 {
            let xs = (0..<m).map { Double(x[$0 * 3 + c]) }, ys = (0..<m).map { Double(y[$0 * 3 + c]) }
            let mean = xs.reduce(0, +) / Double(m)
            let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(m)
            XCTAssertEqual(ys.reduce(0, +) / Double(m), 0, accuracy: 1e-5)
            XCTAssertEqual(ys.map { $0 * $0 }.reduce(0, +) / Double(m), variance / (variance + 1e-5), accuracy: 1e-4)
            XCTAssertEqual(Double(bn.runningMean[c]), 0.1 * mean, accuracy: 1e-5)
            XCTAssertEqual(Double(bn.runningVar[c]), 0.9 + 0.1 * variance * Double(m) / Double(m - 1), accuracy: 1e-4)
        }
    }

    func testBatchNormEvalUsesRunningStatistics() throws {
        let bn = BatchNorm(channels: 2, epsilon: 1e-5)
        bn.runningMean.copy(from: Tensor(shape: [2], values: [1, -2]))
        bn.runningVar.copy(from: Tensor(shape: [2], values: [4, 0.25]))
        bn.weight.value.copy(from: Tensor(shape: [2], values: [2, 3]))
        bn.bias.value.copy(from: Tensor(shape: [2], values: [0.5, -1]))
        let x = Tensor(shape: [3, 2], values: [1, -2, 3, -1.5, -1, 0])
        let y = try run(bn, x, training: false)
        let expected: [Float] = (0..<6).map { i in
            let c = i % 2
            let mean: Float = [1, -2][c], variance: Float = [4, 0.25][c]
            return [2, 3][c] * (x[i] - mean) / (variance + 1e-5).squareRoot() + [0.5, -1][c]
        }
        assertClose(y.values, expected, tolerance: 1e-6)
        XCTAssertEqual(bn.runningMean.values, [1, -2], "eval mode must not update running statistics")
        XCTAssertEqual(bn.runningVar.values, [4, 0.25])
    }

    func testBatchNormGradients() {
        for training in [true, false] {
            for shape in [[2, 5, 5, 3], [7, 3]] {
                let bn = BatchNorm(channels: 3)
                var rng = SplitMix64(seed: 32)
                bn.weight.value.fillUniform(bound: 1, rng: &rng)
                bn.bias.value.fillNormal(std: 1, rng: &rng)
                bn.runningMean.fillNormal(std: 1, rng: &rng)
                for c in 0..<3 { bn.runningVar[c] = 0.5 + rng.nextUnitFloat() }
                checkGradients(layer: bn, inputShape: shape, training: training)
            }
        }
    }

    func testBatchNormCopyIsDeep() throws {
        let bn = BatchNorm(channels: 2)
        _ = try run(bn, randomTensor([4, 2], seed: 33), training: true)
        let copy = bn.copy()
        XCTAssertEqual(copy.runningMean.values, bn.runningMean.values)
        XCTAssertEqual(copy.runningVar.values, bn.runningVar.values)
        _ = try run(copy, randomTensor([4, 2], seed: 34), training: true)
        copy.weight.value[0] = 5
        XCTAssertNotEqual(copy.runningMean.values, bn.runningMean.values)
        XCTAssertEqual(bn.weight.value[0], 1)
    }

    func testBatchNormOutputShapeError() {
        let bn = BatchNorm(channels: 4)
        XCTAssertEqual(try bn.outputShape(for: [2, 3, 3, 4]), [2, 3, 3, 4])
        XCTAssertThrowsError(try bn.outputShape(for: [2, 3, 3, 3]))
        XCTAssertThrowsError(try bn.outputShape(for: [4]))
    }

    // MARK: - Pooling, Flatten

    func testMaxPoolForwardAndGradients() throws {
        let pool = MaxPool2d(kernel: 2, stride: 2)
        let x = Tensor(shape: [1, 2, 4, 1], values: [1, 5, 2, 0, 3, -1, 7, 8])
        XCTAssertEqual(try run(pool, x).values, [5, 8])
        XCTAssertEqual(try pool.outputShape(for: [2, 5, 5, 3]), [2, 2, 2, 3])

        for (kernel, stride, shape) in [(2, 2, [2, 6, 6, 3]), (3, 2, [2, 5, 5, 3]), (2, 1, [2, 5, 4, 3])] {
            checkGradients(layer: MaxPool2d(kernel: kernel, stride: stride), inputShape: shape, training: true,
                           input: wellSeparatedInput(shape: shape))
        }
    }

    func testAvgPoolForwardAndGradients() throws {
        let pool = AvgPool2d(kernel: 2, stride: 2)
        let x = Tensor(shape: [1, 2, 4, 1], values: [1, 5, 2, 0, 3, -1, 7, 8])
        XCTAssertEqual(try run(pool, x).values, [2, 4.25])
        for (kernel, stride, shape) in [(2, 2, [2, 6, 6, 3]), (3, 1, [2, 5, 5, 3]), (3, 2, [2, 5, 6, 3])] {
            checkGradients(layer: AvgPool2d(kernel: kernel, stride: stride), inputShape: shape, training: true)
        }
    }

    func testPoolingOutputShapeErrors() {
        XCTAssertThrowsError(try MaxPool2d(kernel: 3, stride: 1).outputShape(for: [1, 2, 5, 3]))
        XCTAssertThrowsError(try AvgPool2d(kernel: 2, stride: 2).outputShape(for: [1, 4, 3]))
        XCTAssertThrowsError(try GlobalAvgPool().outputShape(for: [1, 4]))
    }

    func testGlobalAvgPoolForwardAndGradients() throws {
        let gap = GlobalAvgPool()
        let x = Tensor(shape: [2, 1, 2, 2], values: [1, 2, 3, 6, -1, 0, 1, 4])
        let y = try run(gap, x)
        XCTAssertEqual(y.shape, [2, 2])
        XCTAssertEqual(y.values, [2, 4, 0, 2])
        checkGradients(layer: GlobalAvgPool(), inputShape: [2, 5, 6, 3], training: true)
    }

    func testFlattenForwardAndGradients() throws {
        let flatten = Flatten()
        let x = randomTensor([2, 3, 4, 5], seed: 41)
        let y = try run(flatten, x)
        XCTAssertEqual(y.shape, [2, 60])
        XCTAssertEqual(y.values, x.values)
        checkGradients(layer: Flatten(), inputShape: [2, 4, 3, 3], training: true)
    }

    // MARK: - ResidualBlock

    func testResidualBlockStructure() {
        var rng = SplitMix64(seed: 51)
        let identity = ResidualBlock(inChannels: 4, outChannels: 4, rng: &rng)
        XCTAssertNil(identity.shortcutConv)
        XCTAssertEqual(identity.namedParameters.map(\.name),
                       ["conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias"])
        XCTAssertEqual(identity.namedBuffers.map(\.name),
                       ["bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"])

        let projection = ResidualBlock(inChannels: 4, outChannels: 8, stride: 2, rng: &rng)
        XCTAssertEqual(projection.namedParameters.map(\.name),
                       ["conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias",
                        "shortcut.conv.weight", "shortcut.bn.weight", "shortcut.bn.bias"])
        XCTAssertEqual(projection.namedBuffers.map(\.name).suffix(2),
                       ["shortcut.bn.running_mean", "shortcut.bn.running_var"])
        XCTAssertEqual(projection.namedParameters.first { $0.name == "shortcut.conv.weight" }?.parameter.value.shape,
                       [8, 1, 1, 4])
        XCTAssertEqual(try projection.outputShape(for: [3, 9, 8, 4]), [3, 5, 4, 8])
        XCTAssertNotNil(ResidualBlock(inChannels: 4, outChannels: 4, stride: 2, rng: &rng).shortcutConv)
        XCTAssertThrowsError(try projection.outputShape(for: [3, 9, 8, 5]))
    }

    /// Sets the block's BN parameters so that every ReLU input is at least ~0.5 away from zero: a ±eps step
    /// then never crosses a kink, where a central difference is meaningless. Each BN shift is ±3 by channel
    /// (with different patterns for the two ReLUs, so both sides of each are exercised) and each BN scale
    /// is at most 0.5 (|γ·x̂| ≲ 1.6); the shortcut's BN is kept small (γ = 0.3, β = 0) as the input is
    /// (std 0.25), so adding the shortcut does not close the margin. In eval mode the running statistics are
    /// first brought to the batch's by repeated training steps, so that eval's x̂ is as well scaled.
    private func checkResidualBlock(inChannels: Int, outChannels: Int, stride: Int, training: Bool, seed: UInt64,
                                    file: StaticString = #filePath, line: UInt = #line) {
        var rng = SplitMix64(seed: seed)
        let block = ResidualBlock(inChannels: inChannels, outChannels: outChannels, stride: stride, rng: &rng)
        for c in 0..<outChannels {
            block.bn1.weight.value[c] = 0.3 + 0.2 * rng.nextUnitFloat()
            block.bn1.bias.value[c] = c % 3 == 2 ? -3 : 3
            block.bn2.weight.value[c] = 0.3 + 0.2 * rng.nextUnitFloat()
            block.bn2.bias.value[c] = c % 2 == 1 ? -3 : 3
        }
        block.shortcutBN?.weight.value.fill(0.3)
        let shape = [2, 6, 6, inChannels]
        let x = Tensor(zeros: shape)
        x.fillNormal(std: 0.25, rng: &rng)
        if !training {
            let y = Tensor(zeros: try! block.outputShape(for: shape))
            for _ in 0..<100 { block.forward(x, into: y, training: true) }
        }
        checkGradients(layer: block, inputShape: shape, training: training, input: x, seed: seed,
                       file: file, line: line)
    }

    func testResidualBlockGradients() {
        // (in, out, stride): identity shortcut, projection for channels, projection for stride and channels.
        for (inC, outC, stride) in [(3, 3, 1), (3, 4, 1), (3, 4, 2)] {
            for training in [true, false] {
                checkResidualBlock(inChannels: inC, outChannels: outC, stride: stride, training: training, seed: 61)
            }
        }
    }

    func testResidualBlockForwardMatchesItsParts() throws {
        var rng = SplitMix64(seed: 71)
        let block = ResidualBlock(inChannels: 3, outChannels: 4, stride: 2, rng: &rng)
        let x = randomTensor([2, 6, 6, 3], seed: 72)
        let y = try run(block, x.clone(), training: true)

        // The same computation from copies of the parts.
        let c1 = block.conv1.copy(), b1 = BatchNorm(channels: 4), c2 = block.conv2.copy(), b2 = BatchNorm(channels: 4)
        let sc = block.shortcutConv!.copy(), sb = BatchNorm(channels: 4)
        let h = try run(b1, try run(c1, x))
        for i in 0..<h.count { h[i] = max(h[i], 0) }
        let r = try run(b2, try run(c2, h)), s = try run(sb, try run(sc, x))
        let expected = (0..<r.count).map { max(r[$0] + s[$0], 0) }
        assertClose(y.values, expected, tolerance: 1e-6)
        // Training mode moved every BN's running statistics the same way.
        XCTAssertEqual(block.bn2.runningMean.values, b2.runningMean.values)
        XCTAssertEqual(block.shortcutBN!.runningVar.values, sb.runningVar.values)
    }

    func testResidualBlockCopyIsDeep() throws {
        var rng = SplitMix64(seed: 81)
        let block = ResidualBlock(inChannels: 2, outChannels: 3, stride: 2, rng: &rng)
        let copy = block.copy()
        let original = block.namedParameters.map { $0.parameter.value.values }
        XCTAssertEqual(copy.namedParameters.map { $0.parameter.value.values }, original)
        for (_, p) in copy.namedParameters { p.value[0] += 1 }
        _ = try run(copy, randomTensor([2, 5, 5, 2], seed: 82), training: true)
        XCTAssertEqual(block.namedParameters.map { $0.parameter.value.values }, original)
        for ((_, a), (_, b)) in zip(block.namedBuffers, copy.namedBuffers) {
            XCTAssertFalse(a === b)
            XCTAssertNotEqual(a.values, b.values)
        }
    }

    // MARK: - Steady state

    /// After the first step has sized every buffer, forward + backward allocate nothing.
    func testSteadyStateStepsDoNotAllocate() throws {
        guard ls_malloc_counter_available() != 0 else { throw XCTSkip("allocation counting needs glibc") }
        var rng = SplitMix64(seed: 91)
        let chunked = Conv2d(inChannels: 3, outChannels: 4, kernel: 3, stride: 2, padding: 1, bias: true, rng: &rng)
        chunked.columnBudget = 1
        let layers: [(String, any Layer)] = [
            ("conv", Conv2d(inChannels: 3, outChannels: 4, kernel: 3, padding: 1, bias: true, rng: &rng)),
            ("chunked conv", chunked),
            ("pointwise conv", Conv2d(inChannels: 3, outChannels: 4, kernel: 1, padding: 0, bias: true, rng: &rng)),
            ("batchnorm", BatchNorm(channels: 3)), ("maxpool", MaxPool2d(kernel: 2, stride: 2)),
            ("avgpool", AvgPool2d(kernel: 3, stride: 1)), ("global avg pool", GlobalAvgPool()), ("flatten", Flatten()),
            ("identity block", ResidualBlock(inChannels: 3, outChannels: 3, rng: &rng)),
            ("projection block", ResidualBlock(inChannels: 3, outChannels: 4, stride: 2, rng: &rng)),
        ]
        for (name, layer) in layers {
            let x = randomTensor([4, 8, 8, 3], seed: 92)
            let y = Tensor(zeros: try layer.outputShape(for: x.shape))
            let dy = randomTensor(y.shape, seed: 93)
            let dx = Tensor(zeros: x.shape)
            for training in [true, false, true] {
                layer.forward(x, into: y, training: training)
                layer.backward(dy, dx: dx)
            }
            ls_malloc_counter_start()
            for training in [true, false, true] {
                layer.forward(x, into: y, training: training)
                layer.backward(dy, dx: dx)
                layer.backward(dy, dx: nil)
            }
            XCTAssertEqual(ls_malloc_counter_stop(), 0, "\(name): allocations in steady-state steps")
        }
    }
}
