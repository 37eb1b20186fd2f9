import LayerSplitEngine
import XCTest

/// Adapter units (mask letter `A`): gradients, the zero-initialised function, parameter counts, keys, training.
final class AdapterTests: XCTestCase {
    let mlp = ModelSpec(inputShape: [5], units: [.linear(6), .linear(6)], taskClasses: [3, 4, 2])
    let cnn = ModelSpec(inputShape: [6, 6, 2], units: [.conv(3), .residual(4, stride: 2)], taskClasses: [3, 2])
    /// Every unit kind and option an adapter meets: a pooled conv, a strided conv, a two-block stage whose
    /// first block projects, an identity-shortcut stage, and a linear unit that reads an image, with rank 3.
    let mixed = ModelSpec(
        inputShape: [8, 8, 2],
        units: [.conv(3, pool: true), .conv(4, stride: 2), .residual(5, blocks: 2), .residual(5), .linear(6, adapterRank: 3)],
        taskClasses: [2, 3])

    // MARK: - Helpers

    /// Three tasks over 6 rows: 2, 3 and 1.
    private func threeTasks() -> TaskRows { TaskRows([0..<2, 2..<5, 5..<6]) }

    private func input(_ shape: [Int], std: Float = 0.5, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let x = Tensor(zeros: shape)
        x.fillNormal(std: std, rng: &rng)
        return x
    }

    /// Sets a BatchNorm so that its outputs stay ~0.5 or more from zero (no ReLU kink within a finite-difference
    /// step): shifts ±3 by channel, scales at most 0.5.
    private func keepAwayFromKinks(_ bn: BatchNorm, pattern: Int, rng: inout SplitMix64) {
        for c in 0..<bn.channels {
            bn.weight.value[c] = 0.3 + 0.2 * rng.nextUnitFloat()
            bn.bias.value[c] = c % pattern == pattern - 1 ? -3 : 3
        }
    }

    private func weights(_ model: MultiTaskModel) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.parameter.value.values) }
            + model.namedBuffers.map { ($0.name, $0.tensor.values) })
    }

    private func tensors(_ model: MultiTaskModel) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.parameter.value) }
            + model.namedBuffers.map { ($0.name, $0.tensor) })
    }

    // MARK: - Spec

    func testRankIsAUnitOptionThatRoundTrips() throws {
        XCTAssertEqual(try UnitSpec(parsing: "linear:128:r4"), .linear(128, adapterRank: 4))
        XCTAssertEqual(try UnitSpec(parsing: "linear:128:r4").description, "linear:128:r4")
        XCTAssertEqual(try UnitSpec(parsing: "linear:128:r8").description, "linear:128", "the default rank is not written")
        XCTAssertEqual(try UnitSpec(parsing: "linear:128"), .linear(128, adapterRank: 8))
        XCTAssertEqual(UnitSpec.linear(128, adapterRank: 4).backbone, .linear(128))
        XCTAssertEqual(UnitSpec.conv(8, stride: 2).backbone, .conv(8, stride: 2))
        for unit in mixed.units + mlp.units + cnn.units {
            XCTAssertEqual(try UnitSpec(parsing: unit.description), unit)
        }
        XCTAssertThrowsError(try UnitSpec(parsing: "linear:128:r0"))
        XCTAssertThrowsError(try UnitSpec(parsing: "conv:8:r4")) { error in
            XCTAssertTrue("\(error)".contains("the adapter rank rN is for linear units"), "\(error)")
        }
        var rng = SplitMix64(seed: 1)
        let zeroRank = ModelSpec(inputShape: [5], units: [.linear(4, adapterRank: 0)], taskClasses: [2])
        XCTAssertThrowsError(try MultiTaskModel(spec: zeroRank, mask: .all(.shared, units: 1), rng: &rng))
    }

    func testEvenKernelConvCannotBeAnAdapterUnit() throws {
        let spec = ModelSpec(inputShape: [6, 6, 2], units: [.conv(3, kernel: 2), .linear(4)], taskClasses: [2, 2])
        XCTAssertFalse(spec.units[0].acceptsAdapter)
        var rng = SplitMix64(seed: 1)
        XCTAssertThrowsError(try MultiTaskModel(spec: spec, mask: SharingMask(parsing: "AS"), rng: &rng)) { error in
            XCTAssertTrue("\(error)".hasPrefix("invalid model: unit 1: unit conv:3:k2 cannot be an adapter unit (A)"), "\(error)")
        }
        XCTAssertNoThrow(try MultiTaskModel(spec: spec, mask: SharingMask(parsing: "TA"), rng: &rng))
        let counts = try ParameterModel(spec: spec)
        XCTAssertNil(counts.adapterCounts[0])
        XCTAssertNotNil(counts.adapterCounts[1])
    }

    // MARK: - Gradients of the units

    func testLinearAdapterUnitGradients() {
        for inputShape in [[6, 7], [6, 3, 3, 2]] {   // vectors, and an image read as its features
            var rng = SplitMix64(seed: 21)
            let features = inputShape.dropFirst().reduce(1, *)
            let fc = Linear(features, 5, rng: &rng)
            for i in 0..<fc.weight.value.count { fc.weight.value[i] *= 0.3 }
            for o in 0..<5 { fc.bias.value[o] = o % 2 == 0 ? 3 : -3 }   // both sides of the ReLU, away from 0
            let unit = LinearAdapterUnit(fc: fc, rank: 2, tasks: 3, rows: threeTasks())
            for a in unit.adapters {   // non-zero adapters, so that every factor's gradient is exercised
                a.u.value.fillNormal(std: 0.3, rng: &rng)
                a.v.value.fillNormal(std: 0.3, rng: &rng)
            }
            XCTAssertEqual(unit.namedParameters.map(\.name),
                           ["fc.weight", "fc.bias", "t0/adapter.U", "t0/adapter.V", "t1/adapter.U", "t1/adapter.V",
                            "t2/adapter.U", "t2/adapter.V"])
            let errors = checkGradients(layer: unit, inputShape: inputShape, training: true,
                                        input: input(inputShape, seed: 22), tolerance: 2e-3)
            XCTAssertEqual(errors.count, 9)
        }
    }

    func testConvAdapterUnitGradients() throws {
        for (stride, kernel) in [(1, 3), (2, 3), (2, 5)] {
            for training in [true, false] {
                var rng = SplitMix64(seed: 31)
                let conv = Conv2d(inChannels: 2, outChannels: 4, kernel: kernel, stride: stride, padding: kernel / 2, rng: &rng)
                let unit = ConvAdapterUnit(conv: conv, norms: (0..<3).map { _ in BatchNorm(channels: 4) }, pool: nil,
                                           rows: threeTasks())
                for a in unit.adapters { a.weight.value.fillNormal(std: 0.3, rng: &rng) }
                for bn in unit.norms { keepAwayFromKinks(bn, pattern: 2, rng: &rng) }
                let shape = [6, 6, 5, 2]
                let x = input(shape, seed: 32)
                if !training {   // running statistics near the batch's, so that eval's x̂ is as well scaled
                    let y = Tensor(zeros: try unit.outputShape(for: shape))
                    for _ in 0..<100 { unit.forward(x, into: y, training: true) }
                }
                let errors = checkGradients(layer: unit, inputShape: shape, training: training, input: x, tolerance: 2e-3)
                XCTAssertEqual(errors.count, 1 + 3 * 3 + 1, "conv, 3 x (adapter, BN scale, BN shift), input")
            }
        }
    }

    func testResidualAdapterUnitGradients() throws {
        // (in, out, stride, blocks): identity shortcut; projection for channels; for stride and channels, 2 blocks.
        for (inC, outC, stride, blocks) in [(3, 3, 1, 1), (3, 4, 1, 1), (3, 4, 2, 2)] {
            for training in [true, false] {
                var rng = SplitMix64(seed: 41)
                let rows = threeTasks()
                var c = inC
                let parts = (0..<blocks).map { b -> ResidualAdapterBlock in
                    let block = ResidualBlock(inChannels: c, outChannels: outC, stride: b == 0 ? stride : 1, rng: &rng)
                    c = outC
                    return ResidualAdapterBlock(from: block, tasks: 3, rows: rows)
                }
                let unit = ResidualAdapterUnit(blocks: parts, rows: rows)
                for block in parts {
                    for a in block.adapter1 + block.adapter2 { a.weight.value.fillNormal(std: 0.5, rng: &rng) }
                    for bn in block.bn1 { keepAwayFromKinks(bn, pattern: 3, rng: &rng) }
                    for bn in block.bn2 { keepAwayFromKinks(bn, pattern: 2, rng: &rng) }
                    for bn in block.shortcutBN ?? [] { bn.weight.value.fill(0.3) }
                }
                let shape = [6, 6, 6, inC]
                let x = input(shape, std: 0.25, seed: 42)
                if !training {
                    let y = Tensor(zeros: try unit.outputShape(for: shape))
                    for _ in 0..<100 { unit.forward(x, into: y, training: true) }
                }
                let errors = checkGradients(layer: unit, inputShape: shape, training: training, input: x, tolerance: 2e-3)
                XCTAssertEqual(errors.count, unit.namedParameters.count + 1)
            }
        }
    }

    // MARK: - Gradients of whole models

    func testWholeModelGradientsMLP() throws {
        for mask in ["AS", "SA", "AA", "TA", "AT"] { try checkModelGradients(mlp, mask) }
        let ranked = ModelSpec(inputShape: [5], units: [.linear(6, adapterRank: 2), .linear(4, adapterRank: 9)], taskClasses: [3, 2])
        try checkModelGradients(ranked, "AA")
    }

    func testWholeModelGradientsCNN() throws {
        for mask in ["AS", "SA", "AA", "TA", "AT"] { try checkModelGradients(cnn, mask) }
        let small = ModelSpec(inputShape: [6, 6, 2], units: [.conv(3, pool: true), .residual(3, blocks: 2), .linear(4, adapterRank: 2)],
                              taskClasses: [2, 3])
        for mask in ["AAA", "SAT"] { try checkModelGradients(small, mask) }
    }

    /// The shared part runs once over every task's rows, so its gradient is the sum over tasks of each task's
    /// loss gradient, while each task's adapter gets its own task's gradient only. Checked by taking each task's
    /// rows alone (the other tasks given no rows) on the MLP, which has no BatchNorm to couple the rows.
    func testSharedGradientIsTheSumOverTasks() throws {
        var rng = SplitMix64(seed: 5)
        let model = try MultiTaskModel(spec: mlp, mask: SharingMask(parsing: "AA"), rng: &rng)
        for (name, p) in model.namedParameters where name.hasSuffix("adapter.U") { p.value.fillNormal(std: 0.2, rng: &rng) }
        func gradients(_ batch: TaskBatch) throws -> [String: [Float]] {
            _ = try model.computeGradients(batch)
            return Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.parameter.grad.values) })
        }
        func close(_ a: [Float], _ b: [Float], _ what: String) {
            let scale = max(a.map(abs).max() ?? 0, b.map(abs).max() ?? 0, 1e-6)
            let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(diff / scale, 1e-5, what)
        }
        let batch = blobBatch(spec: mlp, rowsPerTask: 4, seed: 6)
        let joint = try gradients(batch)
        var sum: [String: [Float]] = [:]
        for t in 0..<mlp.taskCount {
            let rows = batch.segments[t], width = mlp.inputShape[0]
            let inputs = Tensor(shape: [rows.count, width],
                                values: Array(batch.inputs.values[rows.lowerBound * width ..< rows.upperBound * width]))
            let segments = (0..<mlp.taskCount).map { $0 < t ? 0..<0 : $0 == t ? 0..<rows.count : rows.count..<rows.count }
            let alone = try gradients(TaskBatch(inputs: inputs, labels: Array(batch.labels[rows]), segments: segments))
            for (key, g) in alone {
                let parts = key.split(separator: "/")
                if parts.count == 2, parts[0] != "head" {   // shared
                    sum[key] = zip(sum[key] ?? [Float](repeating: 0, count: g.count), g).map { $0 + $1 }
                } else if parts[1] == "t\(t)" {
                    close(g, joint[key]!, "\(key): task \(t)'s adapter sees its own rows only")
                } else if parts[0] != "head" {
                    XCTAssertTrue(g.allSatisfy { $0 == 0 }, "\(key) gets nothing from task \(t)")
                }
            }
        }
        XCTAssertEqual(sum.count, 4)
        for (key, g) in sum { close(g, joint[key]!, "\(key): the sum over tasks") }
    }

    // MARK: - The zero-initialised function

    /// A fresh adapter model draws its backbone and heads exactly as the all-shared model of the same seed does,
    /// and its adapters add exactly zero: the same logits, bit for bit (in training mode too when no unit has a
    /// BatchNorm, which becomes per task).
    func testFreshAdapterModelComputesTheSharedFunction() throws {
        for spec in [mlp, cnn, mixed] {
            let units = spec.units.count
            var rng = SplitMix64(seed: 17)
            let shared = try MultiTaskModel(spec: spec, mask: .all(.shared, units: units), rng: &rng)
            let masks = [SharingMask.all(.adapter, units: units),
                         SharingMask((0..<units).map { $0 % 2 == 0 ? .adapter : .shared })]
            let batch = blobBatch(spec: spec, rowsPerTask: 5, seed: 3)
            for mask in masks {
                var rng2 = SplitMix64(seed: 17)
                let adapted = try MultiTaskModel(spec: spec, mask: mask, rng: &rng2)
                let a = weights(adapted), s = weights(shared)
                for (key, value) in s where !key.contains("bn.") && !key.contains("bn1.") && !key.contains("bn2.") {
                    XCTAssertEqual(a[key], value, "\(mask) \(key): the same seed gives the same shared weights")
                }
                let trainingModes = spec == mlp ? [false, true] : [false]
                for training in trainingModes {
                    try shared.forward(batch, training: training)
                    let expected = shared.logits.map(\.values)
                    try adapted.forward(batch, training: training)
                    XCTAssertEqual(adapted.logits.map(\.values), expected, "\(spec) \(mask) training \(training)")
                }
            }
        }
    }

    /// `loadBackbone` puts pretrained (all-shared) weights in the shared parts, copies the pretrained BatchNorm
    /// into every task's, and sets the adapters to zero: the model then computes the pretrained function.
    func testLoadBackboneGivesThePretrainedFunction() throws {
        for spec in [cnn, mixed] {
            let units = spec.units.count
            var rng = SplitMix64(seed: 23)
            let pretrained = try MultiTaskModel(spec: spec, mask: .all(.shared, units: units), rng: &rng)
            let trainer = TrainingRecipe(steps: 5, learningRate: 0.05).trainer(for: pretrained)
            for s in 0..<5 { try trainer.step(blobBatch(spec: spec, rowsPerTask: 4, seed: UInt64(s))) }  // non-trivial BN statistics
            var rng2 = SplitMix64(seed: 99)
            let model = try MultiTaskModel(spec: spec, mask: .all(.adapter, units: units), rng: &rng2)
            // Trained adapters are set back to zero too.
            for (name, p) in model.namedParameters where name.contains("adapter") { p.value.fillNormal(std: 0.5, rng: &rng2) }
            try model.loadBackbone(tensors(pretrained))
            let source = weights(pretrained), loaded = weights(model)
            for (key, value) in loaded {
                let parts = key.split(separator: "/").map(String.init)
                if key.hasPrefix("head/") {
                    XCTAssertEqual(value, source[key], key)
                } else if parts.count == 3, AdapterUnitNames.isAdapter(parts[2]) {
                    if key.hasSuffix("adapter.V") {
                        XCTAssertTrue(value.contains { $0 != 0 }, "\(key): V keeps its random values")
                    } else {
                        XCTAssertTrue(value.allSatisfy { $0 == 0 }, "\(key) must be zero")
                    }
                } else if parts.count == 3 {
                    XCTAssertEqual(value, source[parts[0] + "/" + parts[2]], "\(key): per-task BN from the shared BN")
                } else {
                    XCTAssertEqual(value, source[key], key)
                }
            }
            let batch = blobBatch(spec: spec, rowsPerTask: 5, seed: 8)
            try pretrained.forward(batch, training: false)
            try model.forward(batch, training: false)
            XCTAssertEqual(model.logits.map(\.values), pretrained.logits.map(\.values), "\(spec)")
        }
    }

    // MARK: - Keys and counts

    func testKeys() throws {
        var rng = SplitMix64(seed: 1)
        let model = try MultiTaskModel(spec: cnn, mask: SharingMask(parsing: "AA"), rng: &rng)
        let keys = model.namedParameters.map(\.name)
        XCTAssertEqual(Array(keys.prefix(7)),
                       ["u01/conv.weight", "u01/t0/adapter.weight", "u01/t0/bn.weight", "u01/t0/bn.bias",
                        "u01/t1/adapter.weight", "u01/t1/bn.weight", "u01/t1/bn.bias"])
        XCTAssertEqual(Array(keys.dropFirst(7).prefix(12)),
                       ["u02/block0.conv1.weight", "u02/block0.conv2.weight", "u02/block0.shortcut.conv.weight",
                        "u02/t0/block0.adapter1.weight", "u02/t0/block0.bn1.weight", "u02/t0/block0.bn1.bias",
                        "u02/t0/block0.adapter2.weight", "u02/t0/block0.bn2.weight", "u02/t0/block0.bn2.bias",
                        "u02/t0/block0.shortcut.bn.weight", "u02/t0/block0.shortcut.bn.bias",
                        "u02/t1/block0.adapter1.weight"])
        XCTAssertEqual(Array(model.namedBuffers.map(\.name).prefix(3)),
                       ["u01/t0/bn.running_mean", "u01/t0/bn.running_var", "u01/t1/bn.running_mean"])
        XCTAssertEqual(model.adapterKeys, ["u01/t0/adapter.weight", "u01/t1/adapter.weight",
                                           "u02/t0/block0.adapter1.weight", "u02/t0/block0.adapter2.weight",
                                           "u02/t1/block0.adapter1.weight", "u02/t1/block0.adapter2.weight"])
        let shapes = Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.parameter.value.shape) })
        XCTAssertEqual(shapes["u01/t1/adapter.weight"], [3, 1, 1, 2])
        XCTAssertEqual(shapes["u02/t1/block0.adapter1.weight"], [4, 1, 1, 3])
        XCTAssertEqual(shapes["u02/t1/block0.adapter2.weight"], [4, 1, 1, 4])
        let linear = try MultiTaskModel(spec: mlp, mask: SharingMask(parsing: "SA"), rng: &rng)
        let linearShapes = Dictionary(uniqueKeysWithValues: linear.namedParameters.map { ($0.name, $0.parameter.value.shape) })
        XCTAssertEqual(linearShapes["u02/fc.weight"], [6, 6])
        XCTAssertEqual(linearShapes["u02/t2/adapter.U"], [6, 8])
        XCTAssertEqual(linearShapes["u02/t2/adapter.V"], [8, 6])
        XCTAssertNil(linearShapes["u02/t2/fc.weight"])
    }

    func testParameterCountsByHand() throws {
        // MLP, 3 tasks. Unit 1: 5·6+6 = 36 shared; adapter 8·(5+6) = 88 per task. Unit 2: 42; 8·12 = 96.
        let heads = 63
        let expected: [String: ParameterCounts] = [
            "AS": ParameterCounts(shared: 36 + 42, specific: 3 * 88, heads: heads),
            "SA": ParameterCounts(shared: 36 + 42, specific: 3 * 96, heads: heads),
            "AT": ParameterCounts(shared: 36, specific: 3 * 88 + 3 * 42, heads: heads),
        ]
        for (mask, counts) in expected {
            var rng = SplitMix64(seed: 1)
            XCTAssertEqual(try MultiTaskModel(spec: mlp, mask: SharingMask(parsing: mask), rng: &rng).parameterCounts, counts, mask)
        }
        // CNN, 2 tasks. conv(3) on 2 channels: 3·9·2 = 54 shared (its BN moves to the tasks);
        // per task 3·2 (adapter) + 2·3 (BN) = 12. residual(4, s2) from 3: 4·9·3 + 4·9·4 + 4·3 = 264 shared;
        // per task 4·3 + 4·4 (adapters) + 3 · 2·4 (BNs) = 52.
        let model = try ParameterModel(spec: cnn)
        XCTAssertEqual(model.adapterCounts, [.init(shared: 54, perTask: 12), .init(shared: 264, perTask: 52)])
        XCTAssertEqual(model.counts(for: try SharingMask(parsing: "AA")),
                       ParameterCounts(shared: 54 + 264, specific: 2 * (12 + 52), heads: 4 * 3 + 3 + 4 * 2 + 2))
    }

    /// For every one of the 3^L masks, `ParameterModel` (which builds nothing per mask) gives the built model's
    /// exact counts, and `stored` is the number of floats the model lists, each tensor once.
    func testParameterModelMatchesEveryBuiltMask() throws {
        let small = ModelSpec(inputShape: [6, 6, 2], units: [.conv(3, pool: true), .residual(4, stride: 2), .linear(5, adapterRank: 3)],
                              taskClasses: [2, 3, 2])
        for spec in [mlp, cnn, small] {
            let counts = try ParameterModel(spec: spec)
            let letters: [SharingState] = [.shared, .specific, .adapter]
            var total = 1
            for _ in spec.units { total *= 3 }
            for code in 0..<total {
                var c = code
                let mask = SharingMask(spec.units.map { _ in defer { c /= 3 }; return letters[c % 3] })
                var rng = SplitMix64(seed: 1)
                let model = try MultiTaskModel(spec: spec, mask: mask, rng: &rng)
                XCTAssertEqual(model.parameterCounts, counts.counts(for: mask), "\(mask)")
                let tensors = model.namedParameters.map(\.parameter.value)
                XCTAssertEqual(Set(tensors.map { UnsafeRawPointer($0.data) }).count, tensors.count, "\(mask): a tensor is listed twice")
                XCTAssertEqual(tensors.reduce(0) { $0 + $1.count }, model.parameterCounts.stored, "\(mask)")
                // Shared floats are the keys without a task part; specific ones have one (heads aside).
                let sharedFloats = model.namedParameters.filter { !$0.name.hasPrefix("head/") && $0.name.split(separator: "/").count == 2 }
                    .reduce(0) { $0 + $1.parameter.value.count }
                XCTAssertEqual(sharedFloats, model.parameterCounts.shared, "\(mask)")
            }
        }
    }

    // MARK: - Training

    func testTrainingMovesEachTasksAdapterAndOneSharedCopy() throws {
        for spec in [mlp, cnn] {
            var rng = SplitMix64(seed: 3)
            let mask = SharingMask.all(.adapter, units: spec.units.count)
            let model = try MultiTaskModel(spec: spec, mask: mask, rng: &rng)
            let before = weights(model)
            let trainer = TrainingRecipe(steps: 60, learningRate: 0.05).trainer(for: model)
            var first: Float = 0, last: Float = 0
            for s in 0..<60 {
                let loss = try trainer.step(blobBatch(spec: spec, rowsPerTask: 8, seed: UInt64(s % 4))).reduce(0, +)
                if s == 0 { first = loss }
                last = loss
            }
            XCTAssertLessThan(last, first / 2, "\(spec): the loss must fall")
            let after = weights(model)
            let sharedKey = spec == mlp ? "u01/fc.weight" : "u01/conv.weight"
            let adapterKey = spec == mlp ? "adapter.U" : "adapter.weight"
            XCTAssertNotEqual(after[sharedKey], before[sharedKey], "the shared weights train")
            XCTAssertNil(after["u01/t0/" + String(sharedKey.dropFirst(4))], "the shared weights are one tensor")
            for t in 0..<spec.taskCount {
                XCTAssertTrue(after["u01/t\(t)/\(adapterKey)"]!.contains { $0 != 0 }, "task \(t)'s adapter moved from zero")
            }
            XCTAssertNotEqual(after["u01/t0/\(adapterKey)"], after["u01/t1/\(adapterKey)"], "tasks' adapters differ")
            if spec == cnn {
                XCTAssertNotEqual(after["u01/t0/bn.weight"], after["u01/t1/bn.weight"], "per-task BatchNorms differ")
                XCTAssertNotEqual(after["u01/t0/bn.running_mean"], after["u01/t1/bn.running_mean"])
            }
        }
    }

    func testAdapterTrainingIsBitForBitDeterministic() throws {
        func trained(_ spec: ModelSpec, _ mask: String, threads: Int) throws -> [[Float]] {
            Threads.set(threads)
            defer { Threads.set(1) }
            var rng = SplitMix64(seed: 11)
            let model = try MultiTaskModel(spec: spec, mask: SharingMask(parsing: mask), rng: &rng)
            let trainer = TrainingRecipe(steps: 5, learningRate: 0.05).trainer(for: model)
            for s in 0..<5 { try trainer.step(blobBatch(spec: spec, rowsPerTask: 8, seed: UInt64(s))) }
            return model.namedParameters.map(\.parameter.value.values) + model.namedBuffers.map(\.tensor.values)
        }
        for threads in [1, 2] {
            for (spec, mask) in [(mlp, "AT"), (cnn, "AA"), (mixed, "AASAA")] {
                XCTAssertEqual(try trained(spec, mask, threads: threads), try trained(spec, mask, threads: threads),
                               "\(mask), threads \(threads)")
            }
        }
    }
}
