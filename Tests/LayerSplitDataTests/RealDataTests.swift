import Foundation
import LayerSplitData
import XCTest

/// The real data sets: Fashion-MNIST from Debian's dataset-fashion-mnist (installed by `make setup`), and the
/// handwritten digits in ../shared/data. Each test skips, saying why, where its files are absent; CI installs
/// them so that the tests run there.
final class RealDataTests: XCTestCase {
    static let fashion = "/usr/share/datasets/fashion-mnist"

    func requireFolder(_ path: String, _ how: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            print("RealDataTests: skipping, \(path) is absent (\(how))")
            throw XCTSkip("\(path) is absent; \(how)")
        }
    }

    func testFashionMNIST() throws {
        try requireFolder(Self.fashion, "install it with 'make setup' (apt-get install dataset-fashion-mnist)")
        let (train, test) = try IDXFolder.load(Self.fashion)
        XCTAssertEqual(train.count, 60000)
        XCTAssertEqual(test.count, 10000)
        XCTAssertEqual(train.shape, [28, 28, 1])
        XCTAssertEqual(train.classes, 10)
        XCTAssertEqual(train.classCounts, Array(repeating: 6000, count: 10))
        XCTAssertEqual(test.classCounts, Array(repeating: 1000, count: 10))
        XCTAssertEqual(train.x.min(), 0)
        XCTAssertEqual(train.x.max(), 1)
        // Fashion-MNIST's published mean pixel value is 0.2860.
        let mean = train.x.reduce(0.0) { $0 + Double($1) } / Double(train.x.count)
        XCTAssertEqual(mean, 0.2860, accuracy: 0.0005)
        // The first training example is an ankle boot (class 9).
        XCTAssertEqual(train.y[0], 9)
    }

    func testSharedHandwrittenDigits() throws {
        for (name, trainCount, testCount) in [("mnist-tiny", 5000, 1000), ("opencv-digits", 4000, 1000)] {
            let folder = "\(sharedData)/\(name)"
            try requireFolder(folder, "clone the shared repository next to this one so that ../shared/data exists")
            let (train, test) = try IDXFolder.load(folder)
            XCTAssertEqual(train.count, trainCount, name)
            XCTAssertEqual(test.count, testCount, name)
            XCTAssertEqual(train.shape, [28, 28, 1], name)
            XCTAssertEqual(train.classes, 10, name)
            XCTAssertTrue(train.classCounts.allSatisfy { $0 > trainCount / 20 }, "\(name): every digit present")
            XCTAssertTrue(train.x.allSatisfy { $0 >= 0 && $0 <= 1 }, name)
        }
    }

    /// The example data sections under search-spaces/examples-data build.
    func testExampleDataSectionsBuild() throws {
        try requireFolder(Self.fashion, "install it with 'make setup' (apt-get install dataset-fashion-mnist)")
        try requireFolder(sharedData, "clone the shared repository next to this one so that ../shared/data exists")
        let folder = packageRoot + "/search-spaces/examples-data"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 3)
        let cache = SourceCache()
        for f in files {
            let spec = try DataSpec.load(file: "\(folder)/\(f)")
            let tasks = try spec.load(seed: 0, cache: cache)
            XCTAssertEqual(tasks.count, spec.taskCount, f)
            XCTAssertTrue(tasks.allSatisfy { $0.shape == tasks[0].shape && $0.classes >= 2 && $0.train.count > 0 }, f)
            XCTAssertFalse(DataDescription.render(tasks, spec: spec).isEmpty)
        }
    }
}
