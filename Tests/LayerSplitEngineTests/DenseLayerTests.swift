import LayerSplitEngine
import XCTest

final class DenseLayerTests: XCTestCase {
    func testLinearGradients() {
        var rng = SplitMix64(seed: 1)
        checkGradients(layer: Linear(7, 5, rng: &rng), inputShape: [4, 7], training: true)
    }

    func testLinearReadsImageRowsAsFeatures() {
        var rng = SplitMix64(seed: 2)
        checkGradients(layer: Linear(3 * 3 * 2, 4, rng: &rng), inputShape: [2, 3, 3, 2], training: true)
    }

    func testReLUGradients() {
        // Inputs away from the kink at 0, so that ±eps never crosses it.
        var rng = SplitMix64(seed: 3)
        let x = Tensor(zeros: [3, 6])
        for i in 0..<x.count { x[i] = (rng.nextUnitFloat() + 0.1) * (i % 2 == 0 ? 1 : -1) }
        checkGradients(layer: ReLU(), inputShape: [3, 6], training: true, input: x)
    }

    func testSequentialGradients() {
        var rng = SplitMix64(seed: 4)
        let net = Sequential([Linear(6, 8, rng: &rng), ReLU(), Linear(8, 3, rng: &rng)], names: ["fc1", "relu", "fc2"])
        let errors = checkGradients(layer: net, inputShape: [5, 6], training: true)
        XCTAssertEqual(Set(errors.keys), ["input", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
    }

    func testLinearMatchesDefinition() throws {
        let layer = Linear(weight: Parameter(Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]), decays: true),
                           bias: Parameter(Tensor(shape: [2], values: [0.5, -1]), decays: false))
        let x = Tensor(shape: [2, 3], values: [1, 0, -1, 2, 1, 0])
        let y = Tensor(zeros: try layer.outputShape(for: x.shape))
        layer.forward(x, into: y, training: true)
        let expected: [Float] = [-1.5, -3, 4.5, 12]   // rows: x·w₀ + b₀, x·w₁ + b₁
        XCTAssertEqual(y.values, expected)
    }

    func testLinearRejectsWrongWidth() {
        var rng = SplitMix64(seed: 5)
        XCTAssertThrowsError(try Linear(4, 2, rng: &rng).outputShape(for: [3, 5])) { error in
            XCTAssertTrue("\(error)".contains("expected input [N, 4], got [3, 5]"), "\(error)")
        }
    }

    func testSoftmaxCrossEntropy() {
        let logits = Tensor(shape: [2, 3], values: [1, 2, 3, 0, 0, 1000])
        let labels: [Int32] = [2, 0]
        let grad = Tensor(zeros: [2, 3])
        let r = labels.withUnsafeBufferPointer { SoftmaxCrossEntropy.evaluate(logits: logits, labels: $0, grad: grad) }
        let l0 = -log(exp(3.0) / (exp(1.0) + exp(2.0) + exp(3.0)))
        XCTAssertEqual(Double(r.loss), (l0 + 1000) / 2, accuracy: 1e-3, "large logits must not overflow")
        XCTAssertEqual(r.correct, 1)
        for row in 0..<2 {
            XCTAssertEqual((0..<3).map { grad[row * 3 + $0] }.reduce(0, +), 0, accuracy: 1e-6)
        }
    }

    func testOptimizersMinimiseAQuadratic() {
        // f(w) = ½‖w − c‖²: both optimisers must get close to c.
        for make in [{ (p: [Parameter]) -> Optimizer in SGD(parameters: p, momentum: 0.9) },
                     { (p: [Parameter]) -> Optimizer in Adam(parameters: p) }] {
            let p = Parameter(Tensor(zeros: [3]), decays: false)
            let c: [Float] = [1, -2, 0.5]
            let opt = make([p])
            for _ in 0..<300 {
                for i in 0..<3 { p.grad[i] = p.value[i] - c[i] }
                opt.step(lr: 0.05)
            }
            for i in 0..<3 { XCTAssertEqual(p.value[i], c[i], accuracy: 1e-2) }
        }
    }

    func testSGDMatchesPyTorchFormula() {
        let p = Parameter(Tensor(shape: [1], values: [1]), decays: true)
        let opt = SGD(parameters: [p], momentum: 0.9, weightDecay: 0.1)
        p.grad[0] = 0.5
        opt.step(lr: 0.1)   // v = 0.5 + 0.1 = 0.6; w = 1 - 0.06
        XCTAssertEqual(p.value[0], 0.94, accuracy: 1e-6)
        p.grad[0] = 0.5
        opt.step(lr: 0.1)   // v = 0.54 + 0.5 + 0.094 = 1.134; w = 0.94 - 0.1134
        XCTAssertEqual(p.value[0], 0.8266, accuracy: 1e-5)
    }

    func testSchedules() {
        XCTAssertEqual(LearningRateSchedule.cosine(base: 1, totalSteps: 100, minimum: 0).rate(at: 0), 1)
        XCTAssertEqual(LearningRateSchedule.cosine(base: 1, totalSteps: 100, minimum: 0).rate(at: 50), 0.5, accuracy: 1e-6)
        XCTAssertEqual(LearningRateSchedule.cosine(base: 1, totalSteps: 100, minimum: 0.1).rate(at: 100), 0.1, accuracy: 1e-6)
        XCTAssertEqual(LearningRateSchedule.step(base: 1, every: 10, gamma: 0.1).rate(at: 25), 0.01, accuracy: 1e-7)
        XCTAssertEqual(LearningRateSchedule.constant(0.3).rate(at: 0, warmup: 3), 0.1, accuracy: 1e-7)
    }
}
