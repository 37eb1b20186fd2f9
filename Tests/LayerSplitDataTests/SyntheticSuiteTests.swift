import LayerSplitData
import LayerSplitEngine
import XCTest

final class SyntheticSuiteTests: XCTestCase {
    func testSameSeedSameData() {
        let a = SyntheticSuite.multiDomain(tasks: 2, trainPerTask: 20, testPerTask: 10, seed: 3)
        let b = SyntheticSuite.multiDomain(tasks: 2, trainPerTask: 20, testPerTask: 10, seed: 3)
        XCTAssertEqual(a.map(\.train.x), b.map(\.train.x))
        XCTAssertNotEqual(a[0].train.x, SyntheticSuite.multiDomain(tasks: 2, trainPerTask: 20, testPerTask: 10, seed: 4)[0].train.x)
    }

    func testBatcherCoversEveryExampleEachEpoch() {
        let set = LabeledSet(name: "s", shape: [1], x: (0..<10).map(Float.init), y: Array(repeating: 0, count: 10), classes: 2)
        let batcher = Batcher(tasks: [set, set], batchSize: 5, seed: 1)
        var seen: [Float] = []
        for _ in 0..<2 { seen += Array(batcher.next().inputs.values.prefix(5)) }
        XCTAssertEqual(seen.sorted(), (0..<10).map(Float.init))
    }
}
