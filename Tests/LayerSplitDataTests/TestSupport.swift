import Foundation
import LayerSplitData
import LayerSplitEngine
import XCTest

/// A fresh temporary folder, removed at the end of the test.
func temporaryFolder(_ test: XCTestCase) throws -> String {
    let path = NSTemporaryDirectory() + "layersplit-data-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
}

/// Writes a small IDX folder in the MNIST layout: `train` and `test` examples of `h x w` uint8 images whose
/// pixels encode the example's index and class, labels balanced over `classes` (example i has class i % classes).
@discardableResult
func writeIDXFolder(_ folder: String, train: Int = 60, test: Int = 20, h: Int = 6, w: Int = 6, classes: Int = 10,
                    compress: Bool = true) throws -> String {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    for (split, n) in [("train", train), ("t10k", test)] {
        var pixels = [UInt8](repeating: 0, count: n * h * w)
        for i in 0..<n {
            for p in 0..<(h * w) { pixels[i * h * w + p] = UInt8((i * 7 + p * 13 + (i % classes) * 29) % 256) }
        }
        let labels = (0..<n).map { UInt8($0 % classes) }
        let gz = compress ? ".gz" : ""
        try IDX.write(IDXArray(uint8: pixels, shape: [n, h, w]), to: "\(folder)/\(split)-images-idx3-ubyte\(gz)", compress: compress)
        try IDX.write(IDXArray(uint8: labels, shape: [n]), to: "\(folder)/\(split)-labels-idx1-ubyte\(gz)", compress: compress)
    }
    return folder
}

/// The package's root folder (this file is Tests/LayerSplitDataTests/TestSupport.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The shared real data sets (`../shared/data` next to the package, as CI clones it).
let sharedData = URL(fileURLWithPath: packageRoot + "/../shared/data").standardizedFileURL.path

/// Asserts that `body` throws a `DataError` whose message contains every one of `fragments`.
func assertDataError(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line,
                     _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch let e as DataError {
        let message = e.description
        for f in fragments where !message.contains(f) {
            XCTFail("error '\(message)' does not contain '\(f)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected a DataError, got \(error)", file: file, line: line)
    }
}
