import LayerSplitEngine
import XCTest

/// Finite differences of the total loss L = Σₜ Lₜ against `computeGradients`, for every parameter.
///
/// Deep ReLU networks have kinks: where a ReLU input lies within ±eps of 0 the central difference measures
/// a slope that is not the derivative at the point. Such elements are recognised because their forward and
/// backward one-sided differences disagree; they are left out, and the test requires that they are few
/// (under 10%). Every other element must match with relative error < 1e-2.
func checkModelGradients(_ spec: ModelSpec, _ mask: String, seed: UInt64 = 9, file: StaticString = #filePath, line: UInt = #line) throws {
    var rng = SplitMix64(seed: seed)
    let model = try MultiTaskModel(spec: spec, mask: SharingMask(parsing: mask), rng: &rng)
    let batch = blobBatch(spec: spec, rowsPerTask: 4, seed: 10, separation: 1)
    _ = try model.computeGradients(batch)
    let eps: Float = 1e-3
    let l0 = try model.losses(batch, training: true).reduce(0, +)
    var checked = 0, kinks = 0
    for (name, p) in model.namedParameters {
        let analytic = p.grad.values
        var forward = [Float](repeating: 0, count: p.value.count), backward = forward
        for i in 0..<p.value.count {
            let v = p.value[i]
            p.value[i] = v + eps
            forward[i] = (try model.losses(batch, training: true).reduce(0, +) - l0) / eps
            p.value[i] = v - eps
            backward[i] = (l0 - (try model.losses(batch, training: true).reduce(0, +))) / eps
            p.value[i] = v
        }
        let central = zip(forward, backward).map { ($0 + $1) / 2 }
        let scale = max(analytic.map(abs).max() ?? 0, central.map(abs).max() ?? 0, 1e-3)
        var worst: Float = 0
        for i in analytic.indices {
            if abs(forward[i] - backward[i]) > 5e-3 * scale { kinks += 1; continue }
            checked += 1
            worst = max(worst, abs(analytic[i] - central[i]) / scale)
        }
        XCTAssertLessThan(worst, 1e-2, "\(mask) \(name): relative error \(worst)", file: file, line: line)
    }
    XCTAssertLessThan(Double(kinks), 0.1 * Double(checked + kinks), "\(mask): too many elements near a kink", file: file, line: line)
}
