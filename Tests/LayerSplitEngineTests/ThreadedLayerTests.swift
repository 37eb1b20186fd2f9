import LayerSplitEngine
import XCTest
import _MallocCounter

/// The layers' own use of threads: convolutions share their im2col chunks out, Linear its GEMMs' rows,
/// BatchNorm, ReLU and the residual block split their passes by rows, SGD its update, all through `Threads`. Results must match one
/// thread's (up to the order of floating-point sums), be bit-for-bit repeatable at a thread count, allocate
/// nothing in a steady state, and a `forEach` nested in another's item must run inline.
final class ThreadedLayerTests: XCTestCase {
    override func tearDown() {
        Threads.set(1)
        super.tearDown()
    }

    private func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let t = Tensor(zeros: shape)
        t.fillNormal(std: 1, rng: &rng)
        return t
    }

    private func assertClose(_ a: [Float], _ b: [Float], tolerance: Float = 1e-4, _ message: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, "\(message): element counts differ", file: file, line: line)
        let scale = max(a.map(abs).max() ?? 0, b.map(abs).max() ?? 0, 1)
        let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(diff / scale, tolerance, "\(message): max difference \(diff) at scale \(scale)",
                          file: file, line: line)
    }

    /// Everything one training-mode forward + backward of `layer` produces: y, dx, parameter gradients and
    /// buffers (running statistics), in that order.
    private func pass(_ layer: some Layer, _ x: Tensor, _ dy: Tensor, training: Bool = true) -> [[Float]] {
        let y = Tensor(zeros: try! layer.outputShape(for: x.shape))
        let dx = Tensor(zeros: x.shape)
        layer.forward(x, into: y, training: training)
        layer.backward(dy, dx: dx)
        return [y.values, dx.values] + layer.namedParameters.map(\.parameter.grad.values)
            + layer.namedBuffers.map(\.tensor.values)
    }

    /// Layers of sizes that the two-thread paths really split (BatchNorm needs 2 × 2¹⁵ elements for two parts).
    private func layers() -> [(String, [Int], () -> any Layer)] {
        [
            ("conv 3x3", [6, 20, 20, 8], {
                var rng = SplitMix64(seed: 1)
                return Conv2d(inChannels: 8, outChannels: 16, kernel: 3, padding: 1, bias: true, rng: &rng)
            }),
            ("conv 3x3 stride 2, one image per chunk", [5, 9, 9, 3], {
                var rng = SplitMix64(seed: 2)
                let c = Conv2d(inChannels: 3, outChannels: 5, kernel: 3, stride: 2, padding: 1, bias: true, rng: &rng)
                c.columnBudget = 1
                return c
            }),
            ("pointwise conv", [5, 8, 8, 6], {
                var rng = SplitMix64(seed: 3)
                return Conv2d(inChannels: 6, outChannels: 4, kernel: 1, padding: 0, bias: true, rng: &rng)
            }),
            ("linear, fewer rows than outputs (split by columns)", [96, 200, 3], {
                var rng = SplitMix64(seed: 6)
                return Linear(600, 130, rng: &rng)
            }),
            ("linear, more rows than outputs (split by rows)", [160, 600], {
                var rng = SplitMix64(seed: 7)
                return Linear(600, 130, rng: &rng)
            }),
            ("batchnorm", [8, 32, 32, 32], { BatchNorm(channels: 32) }),
            ("batchnorm, channels not a multiple of 4", [7, 40, 40, 7], { BatchNorm(channels: 7) }),
            ("relu", [8, 32, 32, 32], { ReLU() }),
            ("global avg pool", [8, 16, 16, 32], { GlobalAvgPool() }),
            ("identity block", [8, 24, 24, 16], {
                var rng = SplitMix64(seed: 4)
                return ResidualBlock(inChannels: 16, outChannels: 16, rng: &rng)
            }),
            ("projection block", [8, 24, 24, 8], {
                var rng = SplitMix64(seed: 5)
                return ResidualBlock(inChannels: 8, outChannels: 16, stride: 2, rng: &rng)
            }),
        ]
    }

    func testTwoThreadsMatchOneAndRepeatBitForBit() throws {
        for (name, shape, make) in layers() {
            let x = randomTensor(shape, seed: 11)
            let yShape = try make().outputShape(for: shape)
            let dy = randomTensor(yShape, seed: 12)
            Threads.set(1)
            let one = pass(make(), x, dy)
            Threads.set(2)
            let layer = make()
            let two = pass(layer, x, dy)
            for (i, (a, b)) in zip(one, two).enumerated() {
                assertClose(a, b, "\(name), output \(i): 2 threads against 1")
            }
            // Same thread count, fresh layer and the same layer again: the same bits.
            XCTAssertEqual(pass(make(), x, dy), two, "\(name): 2 threads, a fresh layer")
            let again = pass(layer, x, dy)
            XCTAssertEqual(again.prefix(2 + layer.namedParameters.count), two.prefix(2 + layer.namedParameters.count),
                           "\(name): 2 threads, the same layer again")
            // Eval mode too (BatchNorm's affine map).
            Threads.set(1)
            let evalOne = pass(make(), x, dy, training: false)
            Threads.set(2)
            let evalTwo = pass(make(), x, dy, training: false)
            for (i, (a, b)) in zip(evalOne, evalTwo).enumerated() {
                assertClose(a, b, "\(name), eval, output \(i): 2 threads against 1")
            }
        }
    }

    /// A whole block's gradients at two threads (the convolutions split into parts of one or two images). As in
    /// ConvLayerTests, the BN parameters keep every ReLU input away from its kink, where a central difference
    /// would be meaningless.
    func testResidualBlockGradientsAtTwoThreads() {
        Threads.set(2)
        for (inC, outC, stride) in [(4, 4, 1), (3, 4, 2)] {
            var rng = SplitMix64(seed: 21)
            let block = ResidualBlock(inChannels: inC, outChannels: outC, stride: stride, rng: &rng)
            for c in 0..<outC {
                block.bn1.weight.value[c] = 0.3 + 0.2 * rng.nextUnitFloat()
                block.bn1.bias.value[c] = c % 3 == 2 ? -3 : 3
                block.bn2.weight.value[c] = 0.3 + 0.2 * rng.nextUnitFloat()
                block.bn2.bias.value[c] = c % 2 == 1 ? -3 : 3
            }
            block.shortcutBN?.weight.value.fill(0.3)
            let shape = [3, 6, 6, inC]
            let x = Tensor(zeros: shape)
            x.fillNormal(std: 0.25, rng: &rng)
            checkGradients(layer: block, inputShape: shape, training: true, input: x, seed: 22)
        }
        var rng = SplitMix64(seed: 23)
        let conv = Conv2d(inChannels: 2, outChannels: 3, kernel: 3, stride: 2, padding: 1, bias: true, rng: &rng)
        checkGradients(layer: conv, inputShape: [3, 5, 5, 2], training: true, seed: 24)
        let pointwise = Conv2d(inChannels: 2, outChannels: 3, kernel: 1, padding: 0, bias: true, rng: &rng)
        checkGradients(layer: pointwise, inputShape: [3, 4, 4, 2], training: true, seed: 25)
    }

    /// A stride-1 convolution with 16 or more input channels computes dx as a convolution of dY with the flipped
    /// kernel (ConvLayerTests' layers have fewer channels, so they check the col2im path): gradients of the
    /// layer, alone and with its dx added to another gradient inside a residual block, at one and two threads.
    func testTransposedConvolutionBackwardGradients() {
        for threads in [1, 2] {
            Threads.set(threads)
            var rng = SplitMix64(seed: 51)
            let conv = Conv2d(inChannels: 16, outChannels: 5, kernel: 3, padding: 1, bias: true, rng: &rng)
            checkGradients(layer: conv, inputShape: [3, 4, 4, 16], training: true, seed: 52)
            let wide = Conv2d(inChannels: 16, outChannels: 3, kernel: 3, padding: 2, rng: &rng)
            checkGradients(layer: wide, inputShape: [2, 3, 4, 16], training: true, seed: 53)
            let block = ResidualBlock(inChannels: 16, outChannels: 16, rng: &rng)
            for c in 0..<16 {
                block.bn1.weight.value[c] = 0.3 + 0.2 * rng.nextUnitFloat()
                block.bn1.bias.value[c] = c % 3 == 2 ? -3 : 3
                block.bn2.weight.value[c] = 0.3 + 0.2 * rng.nextUnitFloat()
                block.bn2.bias.value[c] = c % 2 == 1 ? -3 : 3
            }
            let x = Tensor(zeros: [3, 4, 4, 16])
            x.fillNormal(std: 0.25, rng: &rng)
            checkGradients(layer: block, inputShape: x.shape, training: true, input: x, seed: 54)
        }
    }

    private struct CountItems: ParallelItems {
        let counts: UnsafeMutablePointer<Int>
        let index: Int
        func item(_ i: Int) { counts[index] += 10 }
    }

    func testNestedForEachRunsInlineAndPartsCoverTheRange() {
        Threads.set(2)
        XCTAssertEqual(Threads.parallelism, 2)
        var inner = [Int](repeating: 0, count: 4)
        var innerParallelism = [Int](repeating: 0, count: 4)
        inner.withUnsafeMutableBufferPointer { counts in
            innerParallelism.withUnsafeMutableBufferPointer { seen in
                Threads.forEach(4) { i in
                    seen[i] = Threads.parallelism
                    Threads.forEach(3) { _ in counts[i] += 1 }   // inline: no other thread touches counts[i]
                    Threads.forEach(2, blas: false, CountItems(counts: counts.baseAddress!, index: i))
                }
            }
        }
        XCTAssertEqual(inner, [23, 23, 23, 23])
        XCTAssertEqual(innerParallelism, [1, 1, 1, 1])
        XCTAssertEqual(Threads.parallelism, 2)
        // Parts: contiguous, in order, covering 0..<n.
        for (n, parts) in [(10, 3), (7, 2), (1, 1), (5, 5)] {
            let ranges = (0..<parts).map { Threads.part($0, of: parts, n) }
            XCTAssertEqual(ranges.first?.lowerBound, 0)
            XCTAssertEqual(ranges.last?.upperBound, n)
            for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
        }
        XCTAssertEqual(Threads.parts(1 << 20, minimum: 1 << 15), 2)
        XCTAssertEqual(Threads.parts(1 << 10, minimum: 1 << 15), 1)
        Threads.set(1)
        XCTAssertEqual(Threads.parts(1 << 20, minimum: 1 << 15), 1)
    }

    func testSGDSplitMatchesTheFormula() {
        for nesterov in [false, true] {
            var rng = SplitMix64(seed: 31)
            // Sizes that straddle the parts' boundaries, one not a multiple of 4.
            let params = [[70001], [3], [300, 301], [5]].map { shape -> Parameter in
                let t = Tensor(zeros: shape)
                t.fillNormal(std: 1, rng: &rng)
                let p = Parameter(t, decays: shape.count == 2)
                p.grad.fillNormal(std: 1, rng: &rng)
                return p
            }
            let w0 = params.map(\.value.values), g = params.map(\.grad.values)
            Threads.set(2)
            let sgd = SGD(parameters: params, momentum: 0.9, weightDecay: 0.01, nesterov: nesterov)
            sgd.step(lr: 0.1)
            sgd.step(lr: 0.1)
            for (k, p) in params.enumerated() {
                let wd: Float = p.decays ? 0.01 : 0
                var expected = w0[k]
                var m = [Float](repeating: 0, count: expected.count)
                for _ in 0..<2 {
                    for i in expected.indices {
                        if nesterov {
                            let gi = g[k][i] + wd * expected[i]
                            m[i] = 0.9 * m[i] + gi
                            expected[i] -= 0.1 * (gi + 0.9 * m[i])
                        } else {
                            m[i] = 0.9 * m[i] + g[k][i] + wd * expected[i]
                            expected[i] -= 0.1 * m[i]
                        }
                    }
                }
                XCTAssertEqual(p.value.values, expected, "parameter \(k), nesterov \(nesterov)")
            }
        }
    }

    /// After the first step, the split layers allocate nothing but OpenBLAS's thread-count bookkeeping.
    func testSteadyStateAtTwoThreadsDoesNotAllocate() throws {
        guard ls_malloc_counter_available() != 0 else { throw XCTSkip("allocation counting needs glibc") }
        Threads.set(2)
        for (name, shape, make) in layers() {
            let layer = make()
            let x = randomTensor(shape, seed: 41)
            let y = Tensor(zeros: try layer.outputShape(for: shape))
            let dy = randomTensor(y.shape, seed: 42)
            let dx = Tensor(zeros: shape)
            for training in [true, false, true] {
                layer.forward(x, into: y, training: training)
                layer.backward(dy, dx: dx)
            }
            let changes = Threads.blasThreadChanges
            ls_malloc_counter_start()
            for training in [true, false, true] {
                layer.forward(x, into: y, training: training)
                layer.backward(dy, dx: dx)
                layer.backward(dy, dx: nil)
            }
            let allocations = ls_malloc_counter_stop()
            XCTAssertLessThanOrEqual(allocations, Int64(Threads.blasThreadChanges - changes),
                                     "\(name): allocations in steady-state steps at 2 threads")
        }
    }
}
