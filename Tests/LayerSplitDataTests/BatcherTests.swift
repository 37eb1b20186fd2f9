import Foundation
import LayerSplitData
import LayerSplitEngine
import XCTest

final class BatcherTests: XCTestCase {
    /// A task whose example i is the single value `offset + i`.
    func counting(_ n: Int, offset: Float = 0, classes: Int = 2) -> LabeledSet {
        LabeledSet(name: "c", shape: [1], x: (0..<n).map { offset + Float($0) }, y: (0..<n).map { Int32($0 % classes) }, classes: classes)
    }

    func rows(_ batch: TaskBatch, task t: Int) -> [Float] {
        batch.segments[t].map { batch.inputs.data[$0] }
    }

    func testBatcherCoversEveryExampleEachEpoch() {
        let set = counting(10)
        let batcher = Batcher(tasks: [set, set], batchSize: 5, seed: 1)
        for _ in 0..<3 {
            var seen: [Float] = []
            for _ in 0..<2 { seen += rows(batcher.next(), task: 0) }
            XCTAssertEqual(seen.sorted(), (0..<10).map(Float.init))
        }
    }

    func testLabelsTravelWithTheirExamples() {
        let set = counting(7, classes: 3)
        let batcher = Batcher(tasks: [set], batchSize: 4, seed: 2)
        for _ in 0..<5 {
            let b = batcher.next()
            for r in 0..<4 { XCTAssertEqual(Int(b.labels[r]), Int(b.inputs.data[r]) % 3) }
        }
    }

    /// One stream per task: a task's order depends on the seed and its position only, not on the other tasks.
    func testStreamsAreIndependentPerTask() {
        let a = counting(13), b = counting(5, offset: 100), c = counting(29, offset: 1000)
        let one = Batcher(tasks: [a, b], batchSize: 4, seed: 9)
        let two = Batcher(tasks: [a, c], batchSize: 4, seed: 9)
        var first: [Float] = [], second: [Float] = []
        for _ in 0..<10 {
            first += rows(one.next(), task: 0)
            second += rows(two.next(), task: 0)
        }
        XCTAssertEqual(first, second)
        // Same seed, same batches; another seed, another order.
        let again = Batcher(tasks: [a, b], batchSize: 4, seed: 9), other = Batcher(tasks: [a, b], batchSize: 4, seed: 10)
        XCTAssertEqual(rows(again.next(), task: 1), rows(Batcher(tasks: [a, b], batchSize: 4, seed: 9).next(), task: 1))
        XCTAssertNotEqual((0..<4).flatMap { _ in rows(again.next(), task: 0) }, (0..<4).flatMap { _ in rows(other.next(), task: 0) })
    }

    func testSkipMatchesDrawing() {
        let tasks = [counting(13), counting(7, offset: 50)]
        for skip in [0, 1, 3, 4, 11] {
            let drawn = Batcher(tasks: tasks, batchSize: 3, seed: 4), skipped = Batcher(tasks: tasks, batchSize: 3, seed: 4)
            for _ in 0..<skip { _ = drawn.next() }
            skipped.skip(skip)
            XCTAssertEqual(skipped.batchesDrawn, skip)
            for _ in 0..<5 {
                let x = drawn.next().inputs.values, y = skipped.next().inputs.values
                XCTAssertEqual(x, y, "after skipping \(skip)")
            }
        }
    }

    func testEvaluationBatchesCoverEveryExampleOnce() {
        let a = counting(10), b = counting(3, offset: 100)
        let batches = Batcher.evaluationBatches([a, b], batchSize: 4)
        XCTAssertEqual(batches.count, 3)
        XCTAssertEqual(batches.flatMap { rows($0, task: 0) }, (0..<10).map(Float.init))
        XCTAssertEqual(batches.flatMap { rows($0, task: 1) }, [100, 101, 102])
        XCTAssertEqual(batches[2].segments[1], 2..<2)
    }

    /// Data loading must not be the bottleneck: `next()` against a training step of the reference models
    /// (DESIGN.md), both measured here at one thread. Prints the ratio; fails above 5%.
    func testLoadingCostIsSmallAgainstATrainingStep() throws {
        Threads.set(1)
        for (spec, rows) in [(ModelSpec.referenceMLP, 128), (ModelSpec.referenceCNN, 64)] {
            let shape = spec.inputShape
            var rng = SplitMix64(seed: 1)
            let sets = (0..<4).map { t in
                LabeledSet(name: "t\(t)", shape: shape, x: (0..<(2000 * shape.reduce(1, *))).map { _ in rng.nextUnitFloat() },
                           y: (0..<2000).map { Int32($0 % 10) }, classes: 10)
            }
            let batcher = Batcher(tasks: sets, batchSize: rows, seed: 3)
            var init_ = SplitMix64(seed: 2)
            let model = try MultiTaskModel(spec: spec, mask: .all(.shared, units: spec.units.count), rng: &init_)
            let trainer = TrainingRecipe(steps: 100, batchSize: rows, learningRate: 0.01).trainer(for: model)
            try trainer.step(batcher.next())
            let steps = spec == .referenceMLP ? 6 : 1
            var t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<steps { try trainer.stepUnchecked(batcher.next()) }
            let step = Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(steps)
            let draws = 200
            t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<draws { _ = batcher.next() }
            let next = Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(draws)
            let ratio = next / step
            print(String(format: "loading cost, %@ (4 tasks x %d rows of %@): next() %.1f µs, step incl. next() %.2f ms: %.2f%%",
                         spec == .referenceMLP ? "MLP" : "CNN", rows, shape.map(String.init).joined(separator: "x"),
                         next / 1e3, step / 1e6, 100 * ratio))
            XCTAssertLessThan(ratio, 0.05)
        }
    }
}
