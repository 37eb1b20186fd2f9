import Foundation
import LayerSplitData
import LayerSplitStore
import XCTest

/// HDF5 data sets read through LayerSplitStore: `/x` float32 or uint8 `N x ...`, `/y` integer labels.
final class HDF5SourceTests: XCTestCase {
    func writeFile(_ path: String, body: (HDF5File) throws -> Void) throws {
        let file = try HDF5File(creating: path, overwrite: true)
        try body(file)
        try file.close()
    }

    func testUInt8AndFloatInputsWithAndWithoutATestSplit() throws {
        let dir = try temporaryFolder(self)
        let n = 50
        try writeFile("\(dir)/u8.h5") { f in
            try f.write((0..<(n * 4 * 4)).map { UInt8($0 % 256) }, shape: [n, 4, 4], to: "/x")
            try f.write((0..<n).map { Int64($0 % 5) }, to: "/y")
        }
        try writeFile("\(dir)/f32.h5") { f in
            try f.write((0..<(n * 6)).map { Float($0) }, shape: [n, 6], to: "/train/images")
            try f.write((0..<n).map { Int32($0 % 2) }, to: "/train/labels")
            try f.write((0..<(10 * 6)).map { -Float($0) }, shape: [10, 6], to: "/test/images")
            try f.write((0..<10).map { UInt8($0 % 2) }, to: "/test/labels")
        }
        let yaml = """
            data:
              normalize: none
              validation: 0.1
              tasks:
                - {name: bytes, source: {hdf5: u8.h5}}
                - {name: floats, source: {hdf5: f32.h5, x: /train/images, y: /train/labels, test_x: /test/images, test_y: /test/labels}}
            """
        let spec = try DataSpec.parse(yaml: yaml, file: "\(dir)/space.yaml")
        // The two tasks have different shapes: build them one at a time.
        let bytes = try DataSpec(tasks: [spec.tasks[0]], normalize: .none).load(seed: 1)[0]
        XCTAssertEqual(bytes.shape, [4, 4, 1])
        XCTAssertEqual(bytes.classes, 5)
        XCTAssertEqual(bytes.test.count, 10)         // 0.2 of 50 carved as the test split
        XCTAssertEqual(bytes.validation.count, 4)    // 0.1 of the remaining 40
        XCTAssertEqual(bytes.train.count, 36)
        XCTAssertEqual(bytes.test.classCounts, [2, 2, 2, 2, 2])
        XCTAssertTrue(bytes.train.x.allSatisfy { $0 >= 0 && $0 <= 1 })
        // The carved test split is fixed by the file, whatever the data seed.
        XCTAssertEqual(try DataSpec(tasks: [spec.tasks[0]], normalize: .none).load(seed: 2)[0].test.x, bytes.test.x)
        let floats = try DataSpec(tasks: [spec.tasks[1]], normalize: .none, validation: 0).load(seed: 1)[0]
        XCTAssertEqual(floats.shape, [6])
        XCTAssertEqual(floats.train.count, 50)
        XCTAssertEqual(floats.test.count, 10)
        XCTAssertEqual(Array(floats.train.x.prefix(6)), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(Array(floats.test.x.prefix(3)), [0, -1, -2])
        XCTAssertEqual(floats.provenance.source.hasPrefix("hdf5 "), true)
    }

    /// 4-D inputs: `[N, C, H, W]` with C 1 or 3 is read as NCHW and transposed to the engine's NHWC, `[N, H, W, C]`
    /// with C 1 or 3 as NHWC, and anything else needs `layout:`, which also overrides the guess.
    func testFourDimensionalInputsAreReadInTheirLayout() throws {
        let dir = NSTemporaryDirectory() + "layersplit-nchw-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let n = 10
        // Value = 1000 e + 100 c + 10 h + w, stored NCHW with 3 channels of 2 x 4, and NHWC with 1 channel.
        var nchw: [Float] = []
        for e in 0..<n { for c in 0..<3 { for h in 0..<2 { for w in 0..<4 { nchw.append(Float(1000 * e + 100 * c + 10 * h + w)) } } } }
        try writeFile("\(dir)/d.h5") { f in
            try f.write(nchw, shape: [n, 3, 2, 4], to: "/nchw")
            try f.write((0..<(n * 2 * 4)).map { Float($0) }, shape: [n, 2, 4, 1], to: "/nhwc")
            try f.write((0..<(n * 4 * 5 * 6)).map { Float($0) }, shape: [n, 4, 5, 6], to: "/either")
            try f.write((0..<n).map { Int64($0 % 2) }, to: "/y")
        }
        func load(_ source: String) throws -> TaskData {
            let spec = try DataSpec.parse(yaml: "data:\n  normalize: none\n  validation: 0\n  tasks:\n    - {name: t, source: \(source)}\n",
                                          file: "\(dir)/space.yaml")
            return try spec.load(seed: 0)[0]
        }
        XCTAssertEqual(HDF5Layout.detect([n, 3, 2, 4]), .nchw)
        XCTAssertEqual(HDF5Layout.detect([n, 28, 28, 1]), .nhwc)
        XCTAssertNil(HDF5Layout.detect([n, 4, 5, 6]))
        XCTAssertNil(HDF5Layout.detect([n, 3, 5, 1]))
        let a = try load("{hdf5: d.h5, x: /nchw, test_x: /nchw, test_y: /y}")
        XCTAssertEqual(a.shape, [2, 4, 3])
        // Example 0 in NHWC: (h 0, w 0) channels 0, 100, 200; then (h 0, w 1) ...
        XCTAssertEqual(Array(a.test.x.prefix(6)), [0, 100, 200, 1, 101, 201])
        XCTAssertEqual(a.test.x[(1 * 4 + 2) * 3 + 1], 112)   // example 0, h 1, w 2, channel 1
        XCTAssertEqual(try load("{hdf5: d.h5, x: /nhwc}").shape, [2, 4, 1])
        XCTAssertEqual(try load("{hdf5: d.h5, x: /either, layout: nhwc}").shape, [4, 5, 6])
        XCTAssertEqual(try load("{hdf5: d.h5, x: /either, layout: NCHW}").shape, [5, 6, 4])
        XCTAssertThrowsError(try load("{hdf5: d.h5, x: /either}")) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("space.yaml:5: data.tasks[0].source") && text.contains("layout: nchw"), text)
        }
    }

    func testHDF5ErrorsNameTheFileAndDataset() throws {
        let dir = try temporaryFolder(self)
        try writeFile("\(dir)/bad.h5") { f in
            try f.write([Float](repeating: 0, count: 20 * 3), shape: [20, 3], to: "/x")
            try f.write((0..<19).map { Int64($0 % 2) }, to: "/y")
            try f.write((0..<20).map { Float($0 % 2) }, to: "/yf")
            try f.write((0..<20).map { Int64($0 == 3 ? -2 : $0 % 2) }, to: "/yneg")
        }
        func load(_ source: String) throws {
            _ = try DataSpec.parse(yaml: "data:\n  tasks:\n    - name: t\n      source: \(source)\n", file: "\(dir)/s.yaml").load(seed: 0)
        }
        assertDataError(["s.yaml:4: data.tasks[0].source", "bad.h5", "/y has 19 labels", "/x has 20"]) { try load("{hdf5: bad.h5}") }
        assertDataError(["bad.h5", "/yf", "integers", "float32"]) { try load("{hdf5: bad.h5, y: /yf}") }
        assertDataError(["bad.h5", "/yneg", "label -2 of example 3", "negative"]) { try load("{hdf5: bad.h5, y: /yneg}") }
        assertDataError(["s.yaml:4", "bad.h5", "/nothing"]) { try load("{hdf5: bad.h5, x: /nothing}") }
        try "not hdf5".write(toFile: "\(dir)/text.h5", atomically: true, encoding: .utf8)
        assertDataError(["s.yaml:4", "text.h5", "not an HDF5 file"]) { try load("{hdf5: text.h5}") }
    }
}
