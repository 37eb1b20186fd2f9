import CZlib
import Foundation
import LayerSplitData
import XCTest

final class IDXTests: XCTestCase {
    /// Raw IDX bytes: a header for `type`/`shape` followed by `payload` (which need not fit the header).
    func rawIDX(type: UInt8 = 0x08, shape: [Int], payload: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, type, UInt8(shape.count)]
        for d in shape { withUnsafeBytes(of: UInt32(d).bigEndian) { bytes.append(contentsOf: $0) } }
        return bytes + payload
    }

    func writeRaw(_ bytes: [UInt8], to path: String, gzip: Bool) throws {
        if gzip {
            let gz = try XCTUnwrap(gzopen(path, "wb"))
            _ = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32(bytes.count)) }
            gzclose(gz)
        } else {
            XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        }
    }

    func testRoundTripEveryTypeRankAndCompression() throws {
        let dir = try temporaryFolder(self)
        let arrays = [
            IDXArray(uint8: (0..<(3 * 4 * 5)).map { UInt8($0 * 3 % 256) }, shape: [3, 4, 5]),
            IDXArray(uint8: [7, 0, 255], shape: [3]),
            IDXArray(int32: [-5, 0, 1 << 20, Int32.max], shape: [2, 2]),
            IDXArray(float32: (0..<(2 * 3 * 2 * 2)).map { Float($0) * 0.25 - 1 }, shape: [2, 3, 2, 2]),
            IDXArray(type: .int16, shape: [2, 1, 1, 1, 2], payload: [0xFF, 0xFE, 0, 1, 0x7F, 0xFF, 0x80, 0]),
            IDXArray(uint8: [], shape: [0, 28, 28]),
        ]
        for (i, a) in arrays.enumerated() {
            for compress in [false, true] {
                let path = "\(dir)/a\(i)\(compress ? ".gz" : "")"
                try IDX.write(a, to: path, compress: compress)
                let b = try IDX.read(contentsOf: path)
                XCTAssertEqual(a, b, "array \(i), compress \(compress)")
            }
        }
        // Decoding.
        XCTAssertEqual(arrays[2].integerValues(), [-5, 0, 1 << 20, Int(Int32.max)])
        XCTAssertEqual(arrays[3].floatValues(), (0..<24).map { Float($0) * 0.25 - 1 })
        XCTAssertEqual(arrays[4].integerValues(), [-2, 1, 32767, -32768])
        XCTAssertEqual(arrays[1].floatValues(bytesToUnit: true), [7 / 255, 0, 1])
        XCTAssertNil(arrays[3].integerValues())
        // Gzip is recognised by its magic bytes, whatever the file is called.
        try IDX.write(arrays[0], to: "\(dir)/no-suffix", compress: true)
        XCTAssertEqual(try IDX.read(contentsOf: "\(dir)/no-suffix"), arrays[0])
    }

    func testFolderRoundTripGivesImagesAsHWC1InUnitRange() throws {
        let dir = try writeIDXFolder(try temporaryFolder(self) + "/set", train: 30, test: 10, h: 5, w: 4, classes: 3)
        let (train, test) = try IDXFolder.load(dir)
        XCTAssertEqual(train.shape, [5, 4, 1])
        XCTAssertEqual(train.count, 30)
        XCTAssertEqual(test.count, 10)
        XCTAssertEqual(train.classes, 3)
        XCTAssertEqual(train.classCounts, [10, 10, 10])
        XCTAssertTrue(train.x.allSatisfy { $0 >= 0 && $0 <= 1 })
        // Pixel (i=1, p=2): (7 + 26 + 29) % 256 = 62.
        XCTAssertEqual(train.x[1 * 20 + 2], 62 / 255)
    }

    func testTruncatedFilesAreClearErrorsNamingTheFile() throws {
        let dir = try temporaryFolder(self)
        let full = rawIDX(shape: [10, 6, 6], payload: [UInt8](repeating: 9, count: 360))
        for gzip in [false, true] {
            let path = "\(dir)/cut\(gzip ? ".gz" : "")"
            try writeRaw(full, to: path, gzip: gzip)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            try bytes.prefix(bytes.count - (gzip ? 30 : 100)).write(to: URL(fileURLWithPath: path))
            assertDataError([path, "truncated"]) { _ = try IDX.read(contentsOf: path) }
        }
        // Cut inside the header.
        let path = "\(dir)/header"
        try writeRaw(Array(full.prefix(9)), to: path, gzip: false)
        assertDataError([path, "truncated", "3 dimensions"]) { _ = try IDX.read(contentsOf: path) }
        try writeRaw(Array(full.prefix(2)), to: path, gzip: false)
        assertDataError([path, "too short"]) { _ = try IDX.read(contentsOf: path) }
    }

    func testHeaderSizesThatDisagreeWithThePayload() throws {
        let dir = try temporaryFolder(self)
        for gzip in [false, true] {
            // The header promises 10 images; the payload holds 12.
            let more = "\(dir)/more\(gzip ? ".gz" : "")"
            try writeRaw(rawIDX(shape: [10, 6, 6], payload: [UInt8](repeating: 1, count: 12 * 36)), to: more, gzip: gzip)
            assertDataError([more, "10 x 6 x 6", "disagree"]) { _ = try IDX.read(contentsOf: more) }
            // The header promises 10 images; the payload holds 8.
            let fewer = "\(dir)/fewer\(gzip ? ".gz" : "")"
            try writeRaw(rawIDX(shape: [10, 6, 6], payload: [UInt8](repeating: 1, count: 8 * 36)), to: fewer, gzip: gzip)
            assertDataError([fewer, "10 x 6 x 6"]) { _ = try IDX.read(contentsOf: fewer) }
        }
        // A header claiming an absurd size fails before allocating.
        let huge = "\(dir)/huge"
        try writeRaw(rawIDX(shape: [60000, 60000, 60000], payload: [1, 2, 3]), to: huge, gzip: false)
        assertDataError([huge, "60000 x 60000 x 60000"]) { _ = try IDX.read(contentsOf: huge) }
    }

    func testNotIDXAndMissingFiles() throws {
        let dir = try temporaryFolder(self)
        let text = "\(dir)/readme.txt"
        try "hello world".write(toFile: text, atomically: true, encoding: .utf8)
        assertDataError([text, "not an IDX file", "68 65 6c 6c"]) { _ = try IDX.read(contentsOf: text) }
        assertDataError(["\(dir)/nothing", "no such file"]) { _ = try IDX.read(contentsOf: "\(dir)/nothing") }
        let damaged = "\(dir)/damaged.gz"
        try writeRaw(rawIDX(shape: [4, 6, 6], payload: [UInt8](repeating: 3, count: 144)), to: damaged, gzip: true)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: damaged)))
        for i in 12..<min(bytes.count - 8, 24) { bytes[i] ^= 0x5A }
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        assertDataError([damaged]) { _ = try IDX.read(contentsOf: damaged) }
    }

    func testLabelFileWhoseCountDiffersFromTheImageFile() throws {
        let dir = try writeIDXFolder(try temporaryFolder(self) + "/set", train: 20, test: 10)
        let labels = "\(dir)/t10k-labels-idx1-ubyte.gz"
        try IDX.write(IDXArray(uint8: [UInt8](repeating: 1, count: 9), shape: [9]), to: labels, compress: true)
        assertDataError([labels, "9 labels", "10 images", "t10k-images-idx3-ubyte.gz"]) { _ = try IDXFolder.load(dir) }
    }

    func testLabelsOutOfRange() throws {
        let dir = try writeIDXFolder(try temporaryFolder(self) + "/set", train: 20, test: 10, classes: 4)
        // A test label beyond the train split's classes.
        let testLabels = "\(dir)/t10k-labels-idx1-ubyte.gz"
        try IDX.write(IDXArray(uint8: [0, 1, 2, 3, 0, 1, 2, 7, 0, 1], shape: [10]), to: testLabels, compress: true)
        assertDataError([testLabels, "label 7 of example 7", "out of range", "0..<4"]) { _ = try IDXFolder.load(dir) }
        // Beyond a declared class count.
        assertDataError([testLabels, "label 7", "6 classes"]) { _ = try IDXFolder.load(dir, classes: 6) }
        // Negative labels (a signed label type).
        let trainLabels = "\(dir)/train-labels-idx1-ubyte.gz"
        try IDX.write(IDXArray(int32: (0..<20).map { $0 == 5 ? -1 : Int32($0 % 4) }, shape: [20]), to: trainLabels, compress: true)
        assertDataError([trainLabels, "label -1 of example 5", "negative"]) { _ = try IDXFolder.load(dir) }
        // Float labels.
        try IDX.write(IDXArray(float32: (0..<20).map { Float($0 % 4) }, shape: [20]), to: trainLabels, compress: true)
        assertDataError([trainLabels, "integers", "float32"]) { _ = try IDXFolder.load(dir) }
        // A label file with 2 dimensions.
        try IDX.write(IDXArray(uint8: [UInt8](repeating: 0, count: 20), shape: [10, 2]), to: trainLabels, compress: true)
        assertDataError([trainLabels, "1 dimension"]) { _ = try IDXFolder.load(dir) }
    }

    func testMissingFolderSaysHowToGetTheData() throws {
        assertDataError(["/nowhere/fashion-mnist", "no such folder", "make setup", "dataset-fashion-mnist"]) {
            _ = try IDXFolder.load("/nowhere/fashion-mnist")
        }
        assertDataError(["../shared/data", "shared"]) { _ = try IDXFolder.load("/tmp/x/../shared/data/opencv-digits") }
        let dir = try temporaryFolder(self)
        assertDataError([dir, "no train-images", "found: nothing"]) { _ = try IDXFolder.load(dir) }
    }
}
