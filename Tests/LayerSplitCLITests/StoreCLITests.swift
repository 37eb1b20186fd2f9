import Foundation
import LayerSplitEngine
import LayerSplitStore
import XCTest

/// `layersplit pretrain`, `train --init`, `inspect` and the store's error messages, end to end through the
/// built binary; and the files it writes as `h5dump` reads them.
final class StoreCLITests: CLITestCase {
    /// Pretrains a small backbone into `weights.h5`.
    func pretrain(_ name: String = "weights.h5", units: String = "linear:16,linear:16") throws -> String {
        let w = path(name)
        let r = try layersplit("pretrain", "--units", units, "--steps", "20", "--tasks", "2", "--output", w, "--quiet")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("wrote \(w)"), r.stdout)
        return w
    }

    func testPretrainThenTrainFromTheWeights() throws {
        let w = try pretrain()
        let r = try layersplit("train", "--units", "linear:16,linear:16", "--mask", "TS", "--tasks", "2", "--steps", "10", "--init", w)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("initialised from \(w)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("test accuracy"), r.stdout)

        let inspect = try layersplit("inspect", w)
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        for expected in ["LayerSplit weights", "mask:  SS", "u01", "fc.weight [16, 64]", "head", "2 tasks"] {
            XCTAssertTrue(inspect.stdout.contains(expected), "'\(expected)' not in:\n\(inspect.stdout)")
        }
        let datasets = try layersplit("inspect", w, "--datasets")
        XCTAssertTrue(datasets.stdout.contains("fc.weight  float32 [16, 64]"), datasets.stdout)
    }

    func testInspectNamesAdapterUnits() throws {
        let spec = ModelSpec(inputShape: [12], units: [.linear(8), .linear(8), .linear(8), .linear(8)], taskClasses: [3, 3])
        var rng = SplitMix64(seed: 1)
        let model = try MultiTaskModel(spec: spec, mask: try SharingMask(parsing: "AATS"), rng: &rng)
        let w = path("adapters.h5")
        try WeightsFile.write(model, to: w)
        let inspect = try layersplit("inspect", w)
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        for expected in ["mask:  AATS (1 shared, 1 task-specific, 2 adapter units; 2 tasks)", "shared + 2 adapters (A)", "2 (T)"] {
            XCTAssertTrue(inspect.stdout.contains(expected), "'\(expected)' not in:\n\(inspect.stdout)")
        }
    }

    func testH5dumpReadsTheDocumentedNamesAndShapes() throws {
        let w = try pretrain("cnn.h5", units: "linear:8,linear:4")
        let dump = try run(URL(fileURLWithPath: "/usr/bin/h5dump"), ["-H", w])
        try XCTSkipIf(dump.status == 127, "h5dump is not installed (make setup installs hdf5-tools)")
        XCTAssertEqual(dump.status, 0, dump.stderr)
        // The documented layout: /weights/<unit>/<layer>.<param>, float32, model description as attributes.
        for expected in ["GROUP \"/\"", "ATTRIBUTE \"format\"", "ATTRIBUTE \"model\"", "ATTRIBUTE \"mask\"",
                         "GROUP \"weights\"", "GROUP \"u01\"", "DATASET \"fc.weight\"", "H5T_IEEE_F32LE",
                         "DATASPACE  SIMPLE { ( 8, 64 ) / ( 8, 64 ) }", "GROUP \"head\"", "GROUP \"t1\""] {
            XCTAssertTrue(dump.stdout.contains(expected), "'\(expected)' not in h5dump -H output:\n\(dump.stdout)")
        }
        let one = try run(URL(fileURLWithPath: "/usr/bin/h5dump"), ["-d", "/weights/u02/fc.bias", w])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertTrue(one.stdout.contains("DATASPACE  SIMPLE { ( 4 ) / ( 4 ) }"), one.stdout)

        // A run log too.
        let log = path("log.h5")
        XCTAssertEqual(try layersplit("test-log-writer", "--log", log, "--count", "4").status, 0)
        let logDump = try run(URL(fileURLWithPath: "/usr/bin/h5dump"), ["-H", log])
        XCTAssertEqual(logDump.status, 0, logDump.stderr)
        // Version 2: one column per field, one row per trial (docs/FORMATS.md).
        for expected in ["GROUP \"trials\"", "GROUP \"curves\"", "GROUP \"runs\"", "DATASET \"accuracy\"", "( 4, 3 ) / ( 4, 3 )",
                         "DATASET \"mask\"", "( 16, 3 ) / ( 16, 3 )", "ATTRIBUTE \"search_space_hash\""] {
            XCTAssertTrue(logDump.stdout.contains(expected), "'\(expected)' not in:\n\(logDump.stdout)")
        }
        let inspect = try layersplit("inspect", log)
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("trials: 4 (3 done, 1 diverged)"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("TTSS"), inspect.stdout)
    }

    /// Each bad input gives one line naming the file and the object path, and a non-zero exit status.
    func testBadWeightsGiveOneClearLine() throws {
        let w = try pretrain()
        let units = "linear:16,linear:16"
        func expectError(_ file: String, _ fragments: [String], line: UInt = #line) throws {
            let r = try layersplit("train", "--units", units, "--tasks", "2", "--steps", "2", "--mask", "TS", "--init", file)
            XCTAssertNotEqual(r.status, 0, line: line)
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "one line expected:\n\(r.stderr)", line: line)
            XCTAssertTrue(r.stderr.hasPrefix("error: \(file)"), r.stderr, line: line)
            for f in fragments { XCTAssertTrue(r.stderr.contains(f), "'\(f)' not in: \(r.stderr)", line: line) }
        }
        // Not HDF5 at all.
        let text = path("notes.h5")
        try Data("these are notes\n".utf8).write(to: URL(fileURLWithPath: text))
        try expectError(text, ["not an HDF5 file"])
        // Missing.
        try expectError(path("nowhere.h5"), ["no such file"])
        // Corrupt: the HDF5 signature survives, the rest is cut off.
        let cut = path("cut.h5")
        try Data(try Data(contentsOf: URL(fileURLWithPath: w)).prefix(800)).write(to: URL(fileURLWithPath: cut))
        try expectError(cut, ["damaged"])
        // A dataset of the wrong shape, then a missing one (as an h5py user could write them).
        let bad = path("bad.h5")
        try FileManager.default.copyItem(atPath: w, toPath: bad)
        do {
            let f = try HDF5File(opening: bad, mode: .readWrite)
            try f.delete("/weights/u01/fc.weight")
            try f.write([Float](repeating: 0, count: 16 * 63), shape: [16, 63], to: "/weights/u01/fc.weight")
            try f.close()
        }
        try expectError(bad, ["/weights/u01/fc.weight", "shape [16, 63] but the model expects [16, 64]"])
        do {
            let f = try HDF5File(opening: bad, mode: .readWrite)
            try f.delete("/weights/u01/fc.weight")
            try f.delete("/weights/u02/fc.bias")
            try f.write([Float](repeating: 0, count: 16 * 64), shape: [16, 64], to: "/weights/u01/fc.weight")
            try f.close()
        }
        try expectError(bad, ["/weights/u02/fc.bias", "missing"])
        // Weights for other units.
        let other = try pretrain("other.h5", units: "linear:8,linear:16")
        try expectError(other, ["/@model", "pretrain with the same --units"])
        // inspect fails the same way.
        let r = try layersplit("inspect", text)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(text): not an HDF5 file"), r.stderr)
    }

}
