import Foundation
import LayerSplitEngine
import XCTest
@testable import LayerSplitStore

final class WeightsFileTests: StoreTestCase {
    /// Every unit kind, shared and task-specific, including a linear unit that reads an image.
    let specs: [(ModelSpec, String)] = [
        (ModelSpec(inputShape: [5], units: [.linear(6), .linear(4)], taskClasses: [3, 2]), "TS"),
        (ModelSpec(inputShape: [6, 6, 2], units: [.conv(3, pool: true), .conv(4, kernel: 1, stride: 1)], taskClasses: [3, 2]), "ST"),
        (ModelSpec(inputShape: [6, 6, 2], units: [.conv(3), .residual(4, stride: 2, blocks: 2), .residual(4)], taskClasses: [2, 2, 3]), "STT"),
        (ModelSpec(inputShape: [4, 4, 3], units: [.linear(5), .linear(3)], taskClasses: [2, 2]), "TS"),
        (ModelSpec(inputShape: [6, 6, 2], units: [.conv(3, stride: 2), .linear(5)], taskClasses: [2, 3]), "TT"),
    ]

    /// Fills every parameter and buffer with distinct values so that a permutation bug shows.
    func scramble(_ model: MultiTaskModel, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for (key, t) in WeightsFile.allTensors(model) {
            t.fillNormal(std: 1, rng: &rng)
            if key.hasSuffix("running_var") { for i in 0..<t.count { t[i] = abs(t[i]) + 0.5 } }
        }
    }

    func testRoundTripOfEveryUnitKind() throws {
        for (i, (spec, maskText)) in specs.enumerated() {
            var rng = SplitMix64(seed: UInt64(i))
            let model = try MultiTaskModel(spec: spec, mask: try SharingMask(parsing: maskText), rng: &rng)
            scramble(model, seed: 99)
            let p = path("w\(i).h5")
            try WeightsFile.write(model, to: p, attributes: ["tool_version": "test"])
            let info = try WeightsFile.info(p)
            XCTAssertEqual(info.spec, spec)
            XCTAssertEqual(info.mask.description, maskText)
            XCTAssertEqual(info.format, .weights)
            XCTAssertEqual(info.attributes["tool_version"], "test")
            XCTAssertEqual(Set(info.keys), Set(WeightsFile.allTensors(model).map(\.0)))
            let back = try WeightsFile.makeModel(from: p)
            for ((k1, t1), (k2, t2)) in zip(WeightsFile.allTensors(model), WeightsFile.allTensors(back)) {
                XCTAssertEqual(k1, k2)
                XCTAssertEqual(t1.shape, t2.shape, k1)
                XCTAssertEqual(t1.values, t2.values, "\(spec) \(k1)")
            }
            // The same batch gives the same logits.
            let batch = try batchFor(spec, seed: 5)
            try model.forward(batch, training: false)
            try back.forward(batch, training: false)
            XCTAssertEqual(model.logits.map(\.values), back.logits.map(\.values))
        }
    }

    func testConvWeightsAreStoredInPyTorchLayout() throws {
        let spec = ModelSpec(inputShape: [5, 5, 2], units: [.conv(3, kernel: 3)], taskClasses: [2])
        var rng = SplitMix64(seed: 1)
        let model = try MultiTaskModel(spec: spec, mask: .all(.shared, units: 1), rng: &rng)
        let w = model.namedParameters.first { $0.name == "u01/conv.weight" }!.parameter.value
        XCTAssertEqual(w.shape, [3, 3, 3, 2])   // [out, kh, kw, in]
        for i in 0..<w.count { w[i] = Float(i) }
        let p = path("conv.h5")
        try WeightsFile.write(model, to: p)
        let f = try HDF5File(opening: p)
        defer { try? f.close() }
        let stored = try f.readFloats("/weights/u01/conv.weight")
        XCTAssertEqual(stored.shape, [3, 2, 3, 3])  // [out, in, kh, kw]
        // file[o][i][h][w] == engine[o][h][w][i]
        let (o, ci, h, ww) = (2, 1, 0, 2)
        XCTAssertEqual(stored.values[((o * 2 + ci) * 3 + h) * 3 + ww], w[((o * 3 + h) * 3 + ww) * 2 + ci])
    }

    func testInitialiseCopiesSharedWeightsIntoEverySpecificCopy() throws {
        let spec = ModelSpec(inputShape: [6, 6, 2], units: [.conv(3), .residual(4, stride: 2)], taskClasses: [2, 3])
        var rng = SplitMix64(seed: 3)
        let pretrained = try MultiTaskModel(spec: spec, mask: .all(.shared, units: 2), rng: &rng)
        scramble(pretrained, seed: 11)
        let p = path("pre.h5")
        try WeightsFile.write(pretrained, to: p)
        let model = try MultiTaskModel(spec: spec, mask: try SharingMask(parsing: "TS"), rng: &rng)
        try WeightsFile.initialise(model, from: p)
        let source = Dictionary(uniqueKeysWithValues: WeightsFile.allTensors(pretrained).map { ($0.0, $0.1.values) })
        for (key, t) in WeightsFile.allTensors(model) {
            let k = (try ParameterKey(parsing: key)).sharedKey?.description ?? key
            XCTAssertEqual(t.values, source[k], key)
        }
        // Another model's units are refused with one line naming the file.
        let other = try MultiTaskModel(spec: ModelSpec(inputShape: [6, 6, 2], units: [.conv(5), .residual(4, stride: 2)], taskClasses: [2, 3]),
                                       mask: .all(.shared, units: 2), rng: &rng)
        let e = assertStoreError(.shapeMismatch, object: "/@model", try WeightsFile.initialise(other, from: p))
        XCTAssertTrue(e?.description.hasPrefix(p) ?? false)
    }

    func testMissingDatasetAndShapeMismatchNameFileAndPath() throws {
        let spec = ModelSpec(inputShape: [4, 4, 3], units: [.conv(8), .linear(4)], taskClasses: [2])
        var rng = SplitMix64(seed: 4)
        let model = try MultiTaskModel(spec: spec, mask: .all(.shared, units: 2), rng: &rng)
        let p = path("weights.h5")
        try WeightsFile.write(model, to: p)
        // Damage a copy the way an h5py user could: wrong shape, then a missing dataset.
        do {
            let f = try HDF5File(opening: p, mode: .readWrite)
            try f.delete("/weights/u01/conv.weight")
            try f.write([Float](repeating: 0, count: 8 * 1 * 3 * 3), shape: [8, 1, 3, 3], to: "/weights/u01/conv.weight")
            try f.delete("/weights/u02/fc.bias")
            try f.close()
        }
        let target = try MultiTaskModel(spec: spec, mask: .all(.shared, units: 2), rng: &rng)
        let e = assertStoreError(.shapeMismatch, object: "/weights/u01/conv.weight", try WeightsFile.load(p, into: target))
        XCTAssertEqual(e?.description, "\(p): /weights/u01/conv.weight: shape [8, 1, 3, 3] but the model expects [8, 3, 3, 3]")
        do {
            let f = try HDF5File(opening: p, mode: .readWrite)
            try f.delete("/weights/u01/conv.weight")
            try f.write([Float](repeating: 0, count: 8 * 3 * 3 * 3), shape: [8, 3, 3, 3], to: "/weights/u01/conv.weight")
            try f.close()
        }
        assertStoreError(.missing, object: "/weights/u02/fc.bias", try WeightsFile.load(p, into: target))
    }

    func testNotWeightsFilesAreRefused() throws {
        let p = path("plain.h5")
        let f = try HDF5File(creating: p)
        try f.write([1] as [Float], to: "/x")
        try f.close()
        assertStoreError(.wrongFormat, object: "/", try WeightsFile.info(p))
        let log = path("log.h5")
        let runLog = try RunLog.create(at: log, info: RunInfo(searchSpace: "s", toolVersion: "t", seed: 1))
        try runLog.save(SampleTrials.trial(0))
        try runLog.close()
        assertStoreError(.wrongFormat, object: "/@format", try WeightsFile.info(log))
        try Data(repeating: 7, count: 100).write(to: URL(fileURLWithPath: path("junk.h5")))
        assertStoreError(.notHDF5, object: nil, try WeightsFile.info(path("junk.h5")))
    }

    func testCheckpointContinuesTrainingExactly() throws {
        let spec = ModelSpec(inputShape: [6, 6, 2], units: [.conv(3), .linear(5)], taskClasses: [2, 3])
        let mask = try SharingMask(parsing: "TS")
        for kind in [TrainingRecipe.OptimizerKind.sgd, .adam] {
            let recipe = TrainingRecipe(steps: 20, batchSize: 4, optimizer: kind, learningRate: 0.01)
            var rng = SplitMix64(seed: 8)
            let a = try MultiTaskModel(spec: spec, mask: mask, rng: &rng)
            let ta = recipe.trainer(for: a)
            let batch = try batchFor(spec, seed: 2)
            for _ in 0..<3 { try ta.step(batch) }
            let p = path("ckpt-\(kind).h5")
            try Checkpoint.write(a, trainer: ta, to: p, attributes: ["candidate": "c1"])
            let read = try Checkpoint.read(p)
            XCTAssertEqual(read.step, 3)
            XCTAssertEqual(read.optimizer, kind.rawValue)
            XCTAssertEqual(read.info.attributes["candidate"], "c1")
            // Continue both: the original and one restored from the checkpoint.
            var rng2 = SplitMix64(seed: 1234)
            let b = try MultiTaskModel(spec: spec, mask: mask, rng: &rng2)
            let tb = recipe.trainer(for: b)
            try Checkpoint.restore(p, into: b, trainer: tb)
            XCTAssertEqual(tb.stepCount, 3)
            for _ in 0..<3 {
                let la = try ta.step(batch), lb = try tb.step(batch)
                XCTAssertEqual(la, lb, "\(kind)")
            }
            XCTAssertEqual(WeightsFile.allTensors(a).map(\.1.values), WeightsFile.allTensors(b).map(\.1.values))
        }
        // A weights file is not a checkpoint.
        var rng = SplitMix64(seed: 1)
        let m = try MultiTaskModel(spec: spec, mask: mask, rng: &rng)
        try WeightsFile.write(m, to: path("w.h5"))
        assertStoreError(.wrongFormat, object: "/@format", try Checkpoint.read(path("w.h5")))
    }

    func batchFor(_ spec: ModelSpec, seed: UInt64, rows: Int = 4) throws -> TaskBatch {
        var rng = SplitMix64(seed: seed)
        let n = rows * spec.taskCount
        let x = Tensor(zeros: [n] + spec.inputShape)
        x.fillNormal(std: 1, rng: &rng)
        var labels: [Int32] = []
        for t in 0..<spec.taskCount { for _ in 0..<rows { labels.append(Int32(rng.next() % UInt64(spec.taskClasses[t]))) } }
        return TaskBatch(inputs: x, labels: labels, segments: (0..<spec.taskCount).map { $0 * rows ..< ($0 + 1) * rows })
    }
}
