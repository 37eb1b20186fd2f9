import Foundation
import LayerSplitEngine
import XCTest
@testable import LayerSplitStore

/// Weights files and checkpoints of models with adapter units (mask letter `A`).
final class AdapterWeightsTests: StoreTestCase {
    /// Every unit kind in the adapter state: linear (rank 3, and one reading an image), conv (strided, pooled),
    /// residual stages with projection and identity shortcuts.
    let specs: [(ModelSpec, String)] = [
        (ModelSpec(inputShape: [5], units: [.linear(6, adapterRank: 3), .linear(4)], taskClasses: [3, 2]), "AT"),
        (ModelSpec(inputShape: [6, 6, 2], units: [.conv(3, pool: true), .conv(4, stride: 2)], taskClasses: [3, 2]), "AA"),
        (ModelSpec(inputShape: [6, 6, 2], units: [.conv(3), .residual(4, stride: 2, blocks: 2), .residual(4)], taskClasses: [2, 2, 3]), "SAA"),
        (ModelSpec(inputShape: [6, 6, 2], units: [.conv(3, stride: 2), .linear(5, adapterRank: 2)], taskClasses: [2, 3]), "TA"),
    ]

    func scramble(_ model: MultiTaskModel, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for (key, t) in WeightsFile.allTensors(model) {
            t.fillNormal(std: 1, rng: &rng)
            if key.hasSuffix("running_var") { for i in 0..<t.count { t[i] = abs(t[i]) + 0.5 } }
        }
    }

    func batch(_ spec: ModelSpec, seed: UInt64, rows: Int = 4) -> TaskBatch {
        var rng = SplitMix64(seed: seed)
        let x = Tensor(zeros: [rows * spec.taskCount] + spec.inputShape)
        x.fillNormal(std: 1, rng: &rng)
        var labels: [Int32] = []
        for t in 0..<spec.taskCount { for _ in 0..<rows { labels.append(Int32(rng.next() % UInt64(spec.taskClasses[t]))) } }
        return TaskBatch(inputs: x, labels: labels, segments: (0..<spec.taskCount).map { $0 * rows ..< ($0 + 1) * rows })
    }

    func testRoundTripOfAdapterModels() throws {
        for (i, (spec, maskText)) in specs.enumerated() {
            var rng = SplitMix64(seed: UInt64(i))
            let model = try MultiTaskModel(spec: spec, mask: try SharingMask(parsing: maskText), rng: &rng)
            scramble(model, seed: 99)
            let p = path("a\(i).h5")
            try WeightsFile.write(model, to: p)
            let info = try WeightsFile.info(p)
            XCTAssertEqual(info.spec, spec, "the rank travels in the unit strings")
            XCTAssertEqual(info.mask.description, maskText)
            XCTAssertEqual(Set(info.keys), Set(WeightsFile.allTensors(model).map(\.0)))
            let back = try WeightsFile.makeModel(from: p)
            XCTAssertEqual(back.mask, model.mask)
            for ((k1, t1), (k2, t2)) in zip(WeightsFile.allTensors(model), WeightsFile.allTensors(back)) {
                XCTAssertEqual(k1, k2)
                XCTAssertEqual(t1.values, t2.values, "\(spec) \(k1)")
            }
            let b = batch(spec, seed: 5)
            try model.forward(b, training: false)
            try back.forward(b, training: false)
            XCTAssertEqual(model.logits.map(\.values), back.logits.map(\.values))
        }
    }

    /// A 1x1 adapter convolution is stored `[out, in, 1, 1]` (PyTorch `Conv2d`); the V of a linear unit that reads
    /// an image has its columns in (c, h, w) order, as the unit's own weight does.
    func testAdapterTensorsAreStoredInPyTorchLayout() throws {
        let spec = ModelSpec(inputShape: [3, 3, 2], units: [.conv(4), .linear(5, adapterRank: 2)], taskClasses: [2, 2])
        var rng = SplitMix64(seed: 1)
        let model = try MultiTaskModel(spec: spec, mask: try SharingMask(parsing: "AA"), rng: &rng)
        let tensors = Dictionary(uniqueKeysWithValues: WeightsFile.allTensors(model))
        let a = tensors["u01/t1/adapter.weight"]!, v = tensors["u02/t1/adapter.V"]!, w = tensors["u02/fc.weight"]!
        XCTAssertEqual(a.shape, [4, 1, 1, 2])
        XCTAssertEqual(v.shape, [2, 3 * 3 * 4])
        for t in [a, v, w] { for i in 0..<t.count { t[i] = Float(i) } }
        let p = path("layout.h5")
        try WeightsFile.write(model, to: p)
        let f = try HDF5File(opening: p)
        defer { try? f.close() }
        let storedA = try f.readFloats("/weights/u01/t1/adapter.weight")
        XCTAssertEqual(storedA.shape, [4, 2, 1, 1])
        XCTAssertEqual(storedA.values, a.values, "a 1x1 kernel's permutation keeps the element order")
        let storedV = try f.readFloats("/weights/u02/t1/adapter.V"), storedW = try f.readFloats("/weights/u02/fc.weight")
        XCTAssertEqual(storedV.shape, [2, 36])
        // file[r][(c·H + y)·W + x] == engine[r][(y·W + x)·C + c], with H = W = 3, C = 4.
        let (r, c, y, x) = (1, 3, 2, 0)
        XCTAssertEqual(storedV.values[r * 36 + (c * 3 + y) * 3 + x], v[r * 36 + (y * 3 + x) * 4 + c])
        XCTAssertEqual(storedW.values[r * 36 + (c * 3 + y) * 3 + x], w[r * 36 + (y * 3 + x) * 4 + c])
        XCTAssertEqual(try f.readFloats("/weights/u02/t1/adapter.U").shape, [5, 2], "U is not permuted")
    }

    /// `--init` from all-shared pretrained weights: shared parts take them, every task's BatchNorm starts from
    /// the pretrained one, adapters stay zero, so the model computes the pretrained function; a different
    /// adapter rank fits the same pretrained file.
    func testInitialiseAdapterModelFromPretrainedWeights() throws {
        let pre = ModelSpec(inputShape: [6, 6, 2], units: [.conv(3), .residual(4, stride: 2), .linear(5)], taskClasses: [2, 3])
        var rng = SplitMix64(seed: 3)
        let pretrained = try MultiTaskModel(spec: pre, mask: .all(.shared, units: 3), rng: &rng)
        scramble(pretrained, seed: 11)
        let p = path("pre.h5")
        try WeightsFile.write(pretrained, to: p)
        var spec = pre
        spec.units[2] = .linear(5, adapterRank: 4)
        let model = try MultiTaskModel(spec: spec, mask: try SharingMask(parsing: "AAA"), rng: &rng)
        try WeightsFile.initialise(model, from: p)
        let source = Dictionary(uniqueKeysWithValues: WeightsFile.allTensors(pretrained).map { ($0.0, $0.1.values) })
        let adapters = model.adapterKeys
        XCTAssertEqual(adapters.count, 2 * (1 + 2 + 2))
        for (key, t) in WeightsFile.allTensors(model) {
            if adapters.contains(key) {
                if !key.hasSuffix("adapter.V") { XCTAssertTrue(t.values.allSatisfy { $0 == 0 }, "\(key) stays zero") }
            } else {
                XCTAssertEqual(t.values, source[(try ParameterKey(parsing: key)).sharedKey?.description ?? key], key)
            }
        }
        let b = batch(pre, seed: 6)
        try pretrained.forward(b, training: false)
        try model.forward(b, training: false)
        XCTAssertEqual(model.logits.map(\.values), pretrained.logits.map(\.values))
    }

    func testCheckpointOfAnAdapterModelContinuesExactly() throws {
        let spec = ModelSpec(inputShape: [6, 6, 2], units: [.conv(3), .linear(5, adapterRank: 2)], taskClasses: [2, 3])
        let mask = try SharingMask(parsing: "AA")
        let recipe = TrainingRecipe(steps: 20, batchSize: 4, optimizer: .adam, learningRate: 0.01)
        var rng = SplitMix64(seed: 8)
        let a = try MultiTaskModel(spec: spec, mask: mask, rng: &rng)
        let ta = recipe.trainer(for: a)
        let b0 = batch(spec, seed: 2)
        for _ in 0..<3 { try ta.step(b0) }
        let p = path("ckpt.h5")
        try Checkpoint.write(a, trainer: ta, to: p)
        var rng2 = SplitMix64(seed: 1234)
        let b = try MultiTaskModel(spec: spec, mask: mask, rng: &rng2)
        let tb = recipe.trainer(for: b)
        try Checkpoint.restore(p, into: b, trainer: tb)
        for _ in 0..<3 { XCTAssertEqual(try ta.step(b0), try tb.step(b0)) }
        XCTAssertEqual(WeightsFile.allTensors(a).map(\.1.values), WeightsFile.allTensors(b).map(\.1.values))
    }
}
