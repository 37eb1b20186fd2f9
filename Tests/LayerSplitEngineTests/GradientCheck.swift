import LayerSplitEngine
import XCTest

/// Finite-difference gradient check of any `Layer` (a single layer or a whole network).
///
/// The scalar loss is L = Σ y · R with a fixed random R (so dL/dy = R), accumulated in Double so that its
/// rounding does not swamp the differences. Every element of the input and of every parameter is perturbed by
/// ±eps and the central difference (L₊ − L₋)/(v₊ − v₋) is compared with the analytic gradient from
/// `backward`; for each tensor the relative error is
///     max|a − n| / max(max|a|, max|n|, 1e-3)
/// and must be below `tolerance`. Float32 layers need an eps around 1e-2: smaller steps drown in rounding.
///
/// It also checks the `Layer` contract: `backward` overwrites parameter gradients (they are filled with NaN
/// first), gives the same parameter gradients whether or not `dx` is requested, and fills all of `dx`.
///
/// - Parameters:
///   - input: the input to use (it must have `inputShape`); by default N(0, 1) samples. Pass inputs whose
///     elements are well separated for layers with kinks (max pooling), so that ±eps does not cross one.
///   - checkInput: whether to check dL/dx (a network's first layer may not compute it).
/// - Returns: the relative error of each checked tensor, keyed `input` or by parameter name.
@discardableResult
func checkGradients(
    layer: some Layer, inputShape: [Int], training: Bool, input: Tensor? = nil, seed: UInt64 = 0x5EED,
    eps: Float = 1e-2, tolerance: Float = 1e-2, checkInput: Bool = true,
    file: StaticString = #filePath, line: UInt = #line
) -> [String: Float] {
    var rng = SplitMix64(seed: seed)
    let x: Tensor
    if let input {
        XCTAssertEqual(input.shape, inputShape, "input tensor does not have inputShape", file: file, line: line)
        x = input
    } else {
        x = Tensor(zeros: inputShape)
        x.fillNormal(std: 1, rng: &rng)
    }
    let outShape: [Int]
    do {
        outShape = try layer.outputShape(for: inputShape)
    } catch {
        XCTFail("outputShape(for: \(inputShape)) threw \(error)", file: file, line: line)
        return [:]
    }
    let r = Tensor(zeros: outShape)
    r.fillNormal(std: 1, rng: &rng)
    let y = Tensor(zeros: outShape)

    func loss() -> Double {
        layer.forward(x, into: y, training: training)
        var sum = 0.0
        for i in 0..<y.count { sum += Double(y[i]) * Double(r[i]) }
        return sum
    }

    let parameters = layer.namedParameters
    // Analytic gradients: once without dx, then with dx after poisoning every gradient with NaN.
    _ = loss()
    layer.backward(r, dx: nil)
    let withoutDx = parameters.map { $0.parameter.grad.values }
    for (_, p) in parameters { p.grad.fill(.nan) }
    let dx = Tensor(zeros: inputShape)
    dx.fill(.nan)
    _ = loss()
    layer.backward(r, dx: checkInput ? dx : nil)

    var errors: [String: Float] = [:]
    func compare(_ name: String, analytic: [Float], numeric: [Float]) {
        guard analytic.allSatisfy(\.isFinite) else {
            XCTFail("\(name): the analytic gradient has non-finite elements (not overwritten by backward?)",
                    file: file, line: line)
            errors[name] = .infinity
            return
        }
        var worst = 0, maxDiff: Float = 0, scale: Float = 1e-3
        for i in analytic.indices {
            let d = abs(analytic[i] - numeric[i])
            if d > maxDiff { maxDiff = d; worst = i }
            scale = max(scale, abs(analytic[i]), abs(numeric[i]))
        }
        let error = maxDiff / scale
        errors[name] = error
        XCTAssertLessThan(
            error, tolerance,
            "\(name): relative error \(error) (worst element \(worst): analytic \(analytic[worst]), "
                + "numeric \(numeric[worst]); gradient scale \(scale))",
            file: file, line: line)
    }

    /// dL/dt by central differences, restoring t afterwards.
    func numericGradient(of t: Tensor) -> [Float] {
        (0..<t.count).map { i in
            let v = t[i]
            let plus = v + eps, minus = v - eps
            t[i] = plus
            let lPlus = loss()
            t[i] = minus
            let lMinus = loss()
            t[i] = v
            return Float((lPlus - lMinus) / Double(plus - minus))
        }
    }

    for ((name, p), first) in zip(parameters, withoutDx) {
        let analytic = p.grad.values
        XCTAssertEqual(analytic, first, "\(name): the gradient depends on whether dx is requested",
                       file: file, line: line)
        compare(name, analytic: analytic, numeric: numericGradient(of: p.value))
    }
    if checkInput {
        compare("input", analytic: dx.values, numeric: numericGradient(of: x))
    }
    return errors
}

/// A tensor whose elements are a random permutation of 0, spacing, 2·spacing, … shifted to be centred on 0:
/// no two elements are closer than `spacing`, so a finite-difference step below spacing/2 never changes which
/// element of a window is the maximum.
func wellSeparatedInput(shape: [Int], spacing: Float = 0.05, seed: UInt64 = 7) -> Tensor {
    var rng = SplitMix64(seed: seed)
    let count = shape.reduce(1, *)
    var order = Array(0..<count)
    order.shuffle(using: &rng)
    let half = Float(count - 1) / 2
    return Tensor(shape: shape, values: order.map { (Float($0) - half) * spacing })
}
