import LayerSplitEngine
import XCTest
import _MallocCounter

/// A tiny multi-task problem: `tasks` tasks of Gaussian blobs, each with its own class count.
func blobBatch(spec: ModelSpec, rowsPerTask: Int, seed: UInt64, separation: Float = 3) -> TaskBatch {
    var rng = SplitMix64(seed: seed)
    let tasks = spec.taskCount
    let rowSize = spec.inputShape.reduce(1, *)
    let inputs = Tensor(zeros: [rowsPerTask * tasks] + spec.inputShape)
    var labels = [Int32](repeating: 0, count: rowsPerTask * tasks)
    // Class c of task t is centred at ±separation on feature (c + t) mod features.
    for t in 0..<tasks {
        for r in 0..<rowsPerTask {
            let row = t * rowsPerTask + r
            let c = Int(rng.next() % UInt64(spec.taskClasses[t]))
            labels[row] = Int32(c)
            for f in 0..<rowSize {
                let centre: Float = f == (c + t) % rowSize ? separation : 0
                inputs[row * rowSize + f] = centre + rng.nextNormal() * 0.5
            }
        }
    }
    return TaskBatch(inputs: inputs, labels: labels,
                     segments: (0..<tasks).map { $0 * rowsPerTask ..< ($0 + 1) * rowsPerTask })
}

final class MultiTaskModelTests: XCTestCase {
    let mlp = ModelSpec(inputShape: [5], units: [.linear(6), .linear(6)], taskClasses: [3, 4, 2])
    let cnn = ModelSpec(inputShape: [6, 6, 2], units: [.conv(3), .residual(4, stride: 2)], taskClasses: [3, 2])

    func testWholeModelGradientsMLP() throws {
        for mask in ["SS", "TS", "ST", "TT"] { try checkModelGradients(mlp, mask) }
    }

    func testWholeModelGradientsCNN() throws {
        for mask in ["ST", "TS"] { try checkModelGradients(cnn, mask) }
    }

    func testParameterCountEqualsFloatsStored() throws {
        // Units: 5·6+6 = 36 and 6·6+6 = 42; heads: (6·3+3) + (6·4+4) + (6·2+2) = 63.
        let expected = ["SS": 36 + 42 + 63, "TS": 3 * 36 + 42 + 63, "ST": 36 + 3 * 42 + 63, "TT": 3 * (36 + 42) + 63]
        for (mask, count) in expected {
            var rng = SplitMix64(seed: 1)
            let model = try MultiTaskModel(spec: mlp, mask: SharingMask(parsing: mask), rng: &rng)
            XCTAssertEqual(model.parameterCounts.stored, count, mask)
            let tensors = model.namedParameters.map(\.parameter.value)
            XCTAssertEqual(Set(tensors.map { UnsafeRawPointer($0.data) }).count, tensors.count, "\(mask): a tensor is listed twice")
            XCTAssertEqual(tensors.reduce(0) { $0 + $1.count }, count, mask)
        }
        for mask in ["SSSS", "TTSS", "SSTT", "TTTT", "STST"] {
            var rng = SplitMix64(seed: 1)
            let model = try MultiTaskModel(spec: .referenceCNN, mask: SharingMask(parsing: mask), rng: &rng)
            let counts = model.parameterCounts
            XCTAssertEqual(counts.stored, model.namedParameters.reduce(0) { $0 + $1.parameter.value.count }, mask)
            XCTAssertEqual(counts.heads, 4 * (128 * 10 + 10))
        }
    }

    func testSpecificCopiesDivergeWhileSharedStaysOne() throws {
        var rng = SplitMix64(seed: 3)
        let model = try MultiTaskModel(spec: mlp, mask: SharingMask(parsing: "TS"), rng: &rng)
        func weights() -> [String: [Float]] {
            Dictionary(uniqueKeysWithValues: model.namedParameters.map { ($0.name, $0.parameter.value.values) })
        }
        let before = weights()
        XCTAssertEqual(before["u01/t0/fc.weight"], before["u01/t1/fc.weight"], "copies start from the same weights")
        XCTAssertEqual(before["u01/t0/fc.weight"], before["u01/t2/fc.weight"])
        XCTAssertNotNil(before["u02/fc.weight"])
        XCTAssertNil(before["u02/t0/fc.weight"], "a shared unit is one tensor")
        let trainer = TrainingRecipe(steps: 20, learningRate: 0.05).trainer(for: model)
        let batch = blobBatch(spec: mlp, rowsPerTask: 8, seed: 4)
        for _ in 0..<20 { try trainer.step(batch) }
        let after = weights()
        XCTAssertNotEqual(after["u01/t0/fc.weight"], after["u01/t1/fc.weight"])
        XCTAssertNotEqual(after["u01/t1/fc.weight"], after["u01/t2/fc.weight"])
        XCTAssertNotEqual(after["u02/fc.weight"], before["u02/fc.weight"])
    }

    func testTrainsToHighAccuracyOnSeparableTasks() throws {
        let spec = ModelSpec(inputShape: [8], units: [.linear(32), .linear(32)], taskClasses: [4, 3, 5])
        for mask in ["SS", "TS", "TT"] {
            var rng = SplitMix64(seed: 5)
            let model = try MultiTaskModel(spec: spec, mask: SharingMask(parsing: mask), rng: &rng)
            let trainer = TrainingRecipe(steps: 150, learningRate: 0.05).trainer(for: model)
            var first: Float = 0, last: Float = 0
            for s in 0..<150 {
                let loss = try trainer.step(blobBatch(spec: spec, rowsPerTask: 16, seed: UInt64(100 + s))).reduce(0, +)
                if s == 0 { first = loss }
                last = loss
            }
            XCTAssertLessThan(last, first / 4, "\(mask): loss must fall")
            let eval = try trainer.evaluate([blobBatch(spec: spec, rowsPerTask: 200, seed: 7)])
            for (t, acc) in eval.accuracy.enumerated() {
                XCTAssertGreaterThan(acc, 0.95, "\(mask) task \(t): accuracy \(acc)")
            }
        }
    }

    func trainedWeights(_ spec: ModelSpec, mask: String, threads: Int, steps: Int) throws -> [[Float]] {
        Threads.set(threads)
        defer { Threads.set(1) }
        var rng = SplitMix64(seed: 11)
        let model = try MultiTaskModel(spec: spec, mask: SharingMask(parsing: mask), rng: &rng)
        let trainer = TrainingRecipe(steps: steps, learningRate: 0.05).trainer(for: model)
        for s in 0..<steps { try trainer.step(blobBatch(spec: spec, rowsPerTask: 8, seed: UInt64(s))) }
        return model.namedParameters.map(\.parameter.value.values) + model.namedBuffers.map(\.tensor.values)
    }

    func testTrainingIsBitForBitDeterministic() throws {
        for threads in [1, 2] {
            XCTAssertEqual(try trainedWeights(mlp, mask: "TS", threads: threads, steps: 10),
                           try trainedWeights(mlp, mask: "TS", threads: threads, steps: 10), "threads \(threads)")
            XCTAssertEqual(try trainedWeights(cnn, mask: "TS", threads: threads, steps: 5),
                           try trainedWeights(cnn, mask: "TS", threads: threads, steps: 5), "threads \(threads)")
        }
    }

    func testSteadyStateStepDoesNotAllocate() throws {
        guard ls_malloc_counter_available() != 0 else { throw XCTSkip("allocation counting needs glibc") }
        defer { Threads.set(1) }
        for threads in [1, 2] {
            Threads.set(threads)
            for spec in [mlp, cnn] {
                // A task-specific bottom, then shared or adapter units (linear; conv; residual with a projection).
                let units = spec.units.count
                let masks = [SharingMask([.specific] + Array(repeating: .shared, count: units - 1)),
                             SharingMask([.specific] + Array(repeating: .adapter, count: units - 1)),
                             SharingMask.all(.adapter, units: units)]
                for mask in masks {
                    var rng = SplitMix64(seed: 2)
                    let model = try MultiTaskModel(spec: spec, mask: mask, rng: &rng)
                    let trainer = TrainingRecipe(steps: 10).trainer(for: model)
                    let batch = blobBatch(spec: spec, rowsPerTask: 4, seed: 1)
                    for _ in 0..<3 { try trainer.stepUnchecked(batch) }
                    let changes = Threads.blasThreadChanges
                    ls_malloc_counter_start()
                    for _ in 0..<5 { try trainer.stepUnchecked(batch) }
                    let allocations = ls_malloc_counter_stop()
                    // OpenBLAS's own bookkeeping when its thread count changes is the one allowance (none at 1
                    // thread).
                    let allowance = Threads.blasThreadChanges - changes
                    XCTAssertEqual(threads == 1, allowance == 0)
                    XCTAssertLessThanOrEqual(allocations, Int64(allowance),
                                             "\(spec), \(mask), \(threads) threads: allocations in 5 steady-state steps")
                }
            }
        }
    }

    // MARK: - Bad input

    func testMaskOfWrongLength() {
        var rng = SplitMix64(seed: 1)
        XCTAssertThrowsError(try MultiTaskModel(spec: mlp, mask: SharingMask(parsing: "TSS"), rng: &rng)) { error in
            XCTAssertEqual("\(error)", "mask 'TSS' has 3 letters but the model has 2 units; give one letter per unit, input to output")
        }
        XCTAssertThrowsError(try SharingMask(parsing: "TX")) { error in
            XCTAssertTrue("\(error)".contains("'X' is not a sharing state"), "\(error)")
        }
    }

    func testUnknownUnitKind() {
        XCTAssertThrowsError(try UnitSpec(parsing: "lstm:64")) { error in
            XCTAssertEqual("\(error)", "unknown unit kind 'lstm'; known kinds: linear, conv, residual")
        }
        XCTAssertThrowsError(try UnitSpec(parsing: "linear:0"))
        XCTAssertEqual(try UnitSpec(parsing: "residual:64:s2"), .residual(64, stride: 2))
        let convNeedsImage = ModelSpec(inputShape: [5], units: [.conv(3)], taskClasses: [2])
        var rng = SplitMix64(seed: 1)
        XCTAssertThrowsError(try MultiTaskModel(spec: convNeedsImage, mask: SharingMask(parsing: "S"), rng: &rng)) { error in
            XCTAssertTrue("\(error)".contains("needs an image input"), "\(error)")
        }
    }

    func testBatchThatDoesNotFit() throws {
        var rng = SplitMix64(seed: 1)
        let model = try MultiTaskModel(spec: mlp, mask: SharingMask(parsing: "SS"), rng: &rng)
        let wrongWidth = TaskBatch(inputs: Tensor(zeros: [6, 4]), labels: [0, 0, 0, 0, 0, 0], segments: [0..<2, 2..<4, 4..<6])
        XCTAssertThrowsError(try model.forward(wrongWidth, training: true)) { error in
            XCTAssertTrue("\(error)".contains("expected input [N, 5], got [6, 4]"), "\(error)")
        }
        let badLabel = TaskBatch(inputs: Tensor(zeros: [6, 5]), labels: [0, 0, 0, 9, 0, 0], segments: [0..<2, 2..<4, 4..<6])
        XCTAssertThrowsError(try model.forward(badLabel, training: true)) { error in
            XCTAssertTrue("\(error)".contains("label 9 of row 3 is outside task 1's classes 0..<4"), "\(error)")
        }
        let twoTasks = TaskBatch(inputs: Tensor(zeros: [4, 5]), labels: [0, 0, 0, 0], segments: [0..<2, 2..<4])
        XCTAssertThrowsError(try model.forward(twoTasks, training: true))
    }

    func testNonFiniteLossStopsTraining() throws {
        var rng = SplitMix64(seed: 1)
        let model = try MultiTaskModel(spec: mlp, mask: SharingMask(parsing: "SS"), rng: &rng)
        let trainer = TrainingRecipe(steps: 10).trainer(for: model)
        let batch = blobBatch(spec: mlp, rowsPerTask: 2, seed: 1)
        batch.inputs[3] = .nan
        let before = model.namedParameters.map(\.parameter.value.values)
        XCTAssertThrowsError(try trainer.step(batch)) { error in
            guard case let .nonFiniteLoss(step, task, value)? = error as? EngineError else { return XCTFail("\(error)") }
            XCTAssertEqual([step, task], [0, 0])
            XCTAssertTrue(value.isNaN)
            XCTAssertTrue("\(error)".contains("loss of task 0 became nan at step 0"), "\(error)")
        }
        XCTAssertEqual(model.namedParameters.map(\.parameter.value.values), before, "weights must not change")
    }
}
