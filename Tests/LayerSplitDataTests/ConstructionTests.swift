import Foundation
import LayerSplitData
import LayerSplitEngine
import XCTest

/// Label functions, splits, subsamples and whole task constructions from a data section.
final class ConstructionTests: XCTestCase {
    /// 10 classes of unequal size: class c has 10 + 2c examples.
    func unbalanced() -> LabeledSet {
        var y: [Int32] = []
        for c in 0..<10 { y += Array(repeating: Int32(c), count: 10 + 2 * c) }
        return LabeledSet(name: "u", shape: [1], x: y.indices.map(Float.init), y: y, classes: 10)
    }

    func testLabelFunctionsRelabelAndBalance() throws {
        let set = LabeledSet(name: "s", shape: [1], x: (0..<100).map(Float.init), y: (0..<100).map { Int32($0 % 10) }, classes: 10)
        // Coarse groups: tops / bottoms / footwear / bags.
        let coarse = try LabelFunction.groups([[0, 2, 4, 6], [1, 3], [5, 7, 9], [8]]).apply(to: set)
        XCTAssertEqual(coarse.classes, 4)
        XCTAssertEqual(coarse.classCounts, [40, 20, 30, 10])
        XCTAssertEqual(coarse.count, 100)
        XCTAssertEqual(coarse.y[9], 2)  // class 9 (ankle boot) is footwear
        // A subset keeps only its classes, relabelled in the order listed.
        let sub = try LabelFunction.subset([7, 3, 5]).apply(to: set)
        XCTAssertEqual(sub.classes, 3)
        XCTAssertEqual(sub.count, 30)
        XCTAssertEqual(sub.classCounts, [10, 10, 10])
        XCTAssertEqual(Set(sub.x.map { Int($0) % 10 }), [3, 5, 7])
        XCTAssertTrue(zip(sub.x, sub.y).allSatisfy { [7, 3, 5][Int($1)] == Int($0) % 10 })
        // Parity.
        let parity = try LabelFunction.parity.apply(to: set)
        XCTAssertEqual(parity.classCounts, [50, 50])
        XCTAssertEqual(parity.classBalance.min, 0.5)
        // Groups that leave classes out drop their examples.
        let partial = try LabelFunction.groups([[0], [1, 2]]).apply(to: set)
        XCTAssertEqual(partial.count, 30)
        XCTAssertEqual(partial.classCounts, [10, 20])
        // Errors.
        assertDataError(["class 12", "0..<10"]) { _ = try LabelFunction.subset([1, 12]).apply(to: set) }
        assertDataError(["class 1 is listed twice"]) { _ = try LabelFunction.groups([[1, 2], [1]]).apply(to: set) }
        assertDataError(["at least 2"]) { _ = try LabelFunction.groups([[1, 2]]).apply(to: set) }
    }

    func testValidationSplitIsStratifiedDisjointAndSeeded() {
        let set = unbalanced()
        let (kept, carved) = Sampling.stratifiedSplit(labels: set.y, classes: 10, fraction: 0.25, seed: 3)
        XCTAssertEqual(Set(kept).intersection(carved), [])
        XCTAssertEqual((kept + carved).sorted(), Array(set.y.indices))
        XCTAssertEqual(carved.count, 48)   // round(0.25 x 190)
        let carvedSet = set.subset(carved)
        for c in 0..<10 {
            XCTAssertLessThan(abs(Double(carvedSet.classCounts[c]) - 0.25 * Double(10 + 2 * c)), 1, "class \(c)")
        }
        let again = Sampling.stratifiedSplit(labels: set.y, classes: 10, fraction: 0.25, seed: 3)
        XCTAssertEqual(again.carved, carved)
        XCTAssertNotEqual(Sampling.stratifiedSplit(labels: set.y, classes: 10, fraction: 0.25, seed: 4).carved, carved)
    }

    func testSubsampleKeepsClassProportions() {
        let set = unbalanced()   // 190 examples
        let keep = Sampling.stratifiedSample(labels: set.y, classes: 10, count: 57, seed: 1)
        XCTAssertEqual(keep.count, 57)
        XCTAssertEqual(Set(keep).count, 57)
        let sub = set.subset(keep)
        for c in 0..<10 {
            let exact = Double(10 + 2 * c) * 57 / 190
            XCTAssertLessThanOrEqual(abs(Double(sub.classCounts[c]) - exact), 1, "class \(c)")
        }
        XCTAssertEqual(keep, Sampling.stratifiedSample(labels: set.y, classes: 10, count: 57, seed: 1))
        XCTAssertEqual(Sampling.stratifiedSample(labels: set.y, classes: 10, count: 190, seed: 1), Array(0..<190))
    }

    /// A data section over two small IDX folders: domains by transforms, label functions, subsampling.
    func testDataSectionBuildsEveryConstruction() throws {
        let dir = try temporaryFolder(self)
        try writeIDXFolder("\(dir)/a", train: 200, test: 50, h: 6, w: 6, classes: 10)
        try writeIDXFolder("\(dir)/b", train: 100, test: 40, h: 6, w: 6, classes: 10, compress: false)
        let yaml = """
            data:
              normalize: per-task
              validation: 0.1
              tasks:
                - {name: a, source: {idx: a}, subsample: 100}
                - {name: b, source: {idx: b}}
                - {name: a-perm, source: {idx: a}, transform: {permute: 1}, subsample: 100}
                - {name: a-rot, source: {idx: a}, transform: [{rotate: 90}, invert], subsample: 100}
                - {name: a-coarse, source: {idx: a}, labels: {groups: [[0, 2, 4, 6], [1, 3], [5, 7, 9], [8]]}}
                - {name: a-parity, source: {idx: a}, labels: parity, subsample: {train: 60, validation: 10, test: 20}}
            """
        let spec = try DataSpec.parse(yaml: yaml, file: "\(dir)/space.yaml")
        let tasks = try spec.load(seed: 5)
        XCTAssertEqual(tasks.map(\.name), ["a", "b", "a-perm", "a-rot", "a-coarse", "a-parity"])
        XCTAssertTrue(tasks.allSatisfy { $0.shape == [6, 6, 1] })
        XCTAssertEqual(tasks.map(\.train.count), [100, 90, 100, 100, 180, 60])
        XCTAssertEqual(tasks.map(\.validation.count), [20, 10, 20, 20, 20, 10])
        XCTAssertEqual(tasks.map(\.test.count), [50, 40, 50, 50, 50, 20])
        XCTAssertEqual(tasks.map(\.classes), [10, 10, 10, 10, 4, 2])
        // Class balance of the constructed tasks.
        XCTAssertEqual(tasks[0].train.classCounts, Array(repeating: 10, count: 10))
        XCTAssertEqual(tasks[4].train.classCounts, [72, 36, 54, 18])
        XCTAssertEqual(tasks[5].train.classCounts, [30, 30])
        XCTAssertEqual(tasks[5].validation.classCounts, [5, 5])
        // Per-task normalisation: mean 0, std 1 on each training split.
        for t in tasks {
            let n = Double(t.train.x.count)
            let mean = t.train.x.reduce(0.0) { $0 + Double($1) } / n
            let variance = t.train.x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
            XCTAssertEqual(mean, 0, accuracy: 1e-4, t.name)
            XCTAssertEqual(variance.squareRoot(), 1, accuracy: 1e-3, t.name)
        }
        // Tasks of one source share their examples: the permuted domain is the plain one, permuted.
        XCTAssertEqual(tasks[2].train.y, tasks[0].train.y)
        let unpermuted = try XCTUnwrap(try InputTransform.permute(seed: 1).applyInverse(to: tasks[2].train))
        XCTAssertEqual(unpermuted.x.count, tasks[0].train.x.count)
        XCTAssertTrue(zip(unpermuted.x, tasks[0].train.x).allSatisfy { abs($0 - $1) < 1e-5 })
        // The same seed builds the same tasks; another seed other splits.
        let again = try spec.load(seed: 5)
        XCTAssertEqual(again.map(\.train.x), tasks.map(\.train.x))
        XCTAssertEqual(again.map(\.validation.y), tasks.map(\.validation.y))
        XCTAssertNotEqual(try spec.load(seed: 6)[0].train.x, tasks[0].train.x)
        // The tasks train together: one batcher over all of them.
        let batch = Batcher(tasks: tasks.map(\.train), batchSize: 8, seed: 1).next()
        XCTAssertEqual(batch.inputs.shape, [48, 6, 6, 1])
        XCTAssertEqual(batch.segments.count, 6)
    }

    func testUnitAndNoNormalisation() throws {
        let dir = try temporaryFolder(self)
        try writeIDXFolder("\(dir)/a", train: 50, test: 10)
        for (mode, check) in [("unit", { (x: [Float]) in XCTAssertEqual(x.min()!, 0, accuracy: 1e-6); XCTAssertEqual(x.max()!, 1, accuracy: 1e-6) }),
                              ("none", { (x: [Float]) in XCTAssertTrue(x.allSatisfy { $0 >= 0 && $0 <= 1 }) })] {
            let spec = try DataSpec.parse(yaml: "data: {normalize: \(mode), validation: 0, tasks: [{name: a, source: {idx: a}}]}",
                                          file: "\(dir)/s.yaml")
            let task = try spec.load(seed: 0)[0]
            check(task.train.x)
            XCTAssertEqual(task.validation.count, 0)
            XCTAssertEqual(task.provenance.normalization.hasPrefix(mode), true)
        }
    }

    func testTasksWithDifferentShapesAndOversizedSubsamplesAreErrors() throws {
        let dir = try temporaryFolder(self)
        try writeIDXFolder("\(dir)/a", train: 40, test: 10, h: 6, w: 4)
        let rotated = "data:\n  tasks:\n    - {name: a, source: {idx: a}}\n    - {name: r, source: {idx: a}, transform: {rotate: 90}}\n"
        assertDataError(["s.yaml:4: data.tasks[1].source", "[4, 6, 1]", "[6, 4, 1]"]) {
            _ = try DataSpec.parse(yaml: rotated, file: "\(dir)/s.yaml").load(seed: 0)
        }
        let big = "data:\n  tasks:\n    - name: a\n      source: {idx: a}\n      subsample: 37\n"
        assertDataError(["s.yaml:5: data.tasks[0].subsample", "37 train examples", "has 36", "after carving out the validation"]) {
            _ = try DataSpec.parse(yaml: big, file: "\(dir)/s.yaml").load(seed: 0)
        }
        let badClass = "data:\n  tasks:\n    - name: a\n      source: {idx: a}\n      labels: {subset: [1, 11]}\n"
        assertDataError(["s.yaml:5: data.tasks[0].labels", "class 11"]) {
            _ = try DataSpec.parse(yaml: badClass, file: "\(dir)/s.yaml").load(seed: 0)
        }
    }
}
