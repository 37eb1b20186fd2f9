import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitReport
import LayerSplitRun
import LayerSplitSearch
import LayerSplitStore
import XCTest

/// From a search to a trained model file: `training.keep`, `export`, `evaluate`, `predict`, `train --output`,
/// end to end on a tiny synthetic study (2 units, 2 seeds).
final class ModelCLITests: CLITestCase {
    /// The shared tiny study evaluated on its test split (96 examples a task), optionally with `training.keep`.
    func modelSpace(keep: String? = nil) throws -> String {
        try tinySpace("tiny\(keep ?? "").yaml", seeds: 2, test: 96, training: keep.map { ", keep: \($0)" } ?? "",
                      lines: ["evaluation: test"])
    }

    func testFrontModelsAreKeptAndExportEvaluatePredictReproduceTheLog() throws {
        let space = try modelSpace()
        let out = path("run")
        let search = try layersplit("search", space, "--output", out, "--quiet")
        XCTAssertEqual(search.status, 0, search.stderr)

        // keep: front (the default): every seed of the front's masks, nothing else.
        let report = try StudyRun.report(fromLog: out + "/log.h5")
        let frontMasks = Set(report.front.map { report.candidates[$0].mask })
        XCTAssertFalse(frontMasks.isEmpty)
        for c in report.candidates {
            for t in c.trials {
                let file = out + "/models/\(t.key.id).h5"
                XCTAssertEqual(FileManager.default.fileExists(atPath: file), frontMasks.contains(c.mask), file)
            }
        }
        XCTAssertLessThan(frontMasks.count, report.candidates.count, "the test wants a mask off the front")

        // export --budget: the most accurate mask that fits, the median seed; evaluate reproduces its log entry.
        let model = path("model.h5")
        let export = try layersplit("export", out, "--budget", "+100%", "-o", model)
        XCTAssertEqual(export.status, 0, export.stderr)
        let best = try XCTUnwrap(report.answer(under: try Budget.parse("+100%"))).best
        XCTAssertTrue(export.stdout.contains("mask \(best.mask)"), export.stdout)
        let info = try TrainedModelFile.info(model)
        let trial = try XCTUnwrap(best.trials.first { $0.key.id == info.trial }, "\(info.trial ?? "nil")")
        XCTAssertEqual(info.accuracy, trial.accuracy)
        XCTAssertEqual(info.weights.mask, best.mask)

        let evaluate = try layersplit("evaluate", model, space)
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        let measured = Self.accuracies(evaluate.stdout)
        XCTAssertEqual(measured.count, trial.accuracy.count, evaluate.stdout)
        for (m, l) in zip(measured, trial.accuracy) { XCTAssertEqual(m, l, accuracy: 1e-4, evaluate.stdout) }

        // predict: the raw test inputs of task 1, normalised by the file's constants, give the evaluated accuracy.
        let spaceValue = try SearchSpace.load(space)
        var raw = spaceValue.data
        raw.normalize = .none
        let test = try raw.load(seed: 0)[1].test
        let inputs = path("inputs.h5")
        try HDF5File.writeAtomically(to: inputs) { file in
            try file.write(test.x, shape: [test.count] + test.shape, to: "/x")
        }
        let scores = path("scores.h5")
        let predict = try layersplit("predict", model, "--task", "domain1", inputs, "-o", scores)
        XCTAssertEqual(predict.status, 0, predict.stderr)
        let file = try HDF5File(opening: scores)
        let predicted = try file.readInt64("/predicted").values
        XCTAssertEqual(try file.info(of: "/scores").shape, [test.count, 4])
        try file.close()
        let correct = zip(predicted, test.y).filter { $0.0 == Int64($0.1) }.count
        XCTAssertEqual(Double(correct) / Double(test.count), trial.accuracy[1], accuracy: 1e-9)
        let csv = path("scores.csv")
        XCTAssertEqual(try layersplit("predict", model, "--task", "1", inputs, "--softmax", "-o", csv).status, 0)
        XCTAssertEqual(try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").count, test.count + 1)

        // A mask off the front was not kept: one line with the fix, exit 1.
        let off = try XCTUnwrap(report.candidates.first { !frontMasks.contains($0.mask) }).mask
        let refused = try layersplit("export", out, "--mask", off.description, "-o", path("off.h5"))
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("not on the front") && refused.stderr.contains("keep: all"), refused.stderr)

        // A model of another space is refused (exit 2).
        let other = path("other.yaml")
        try String(contentsOfFile: space, encoding: .utf8).replacingOccurrences(of: "linear:16, linear:16", with: "linear:8, linear:16")
            .write(toFile: other, atomically: true, encoding: .utf8)
        XCTAssertEqual(try layersplit("evaluate", model, other).status, 2)

        // Resume: a model file without a log entry is stale and removed; --force sets models/ aside.
        let stale = out + "/models/SS.seed9.steps40.h5"
        try FileManager.default.copyItem(atPath: model, toPath: stale)
        XCTAssertEqual(try layersplit("search", space, "--output", out, "--quiet").status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/models/\(trial.key.id).h5"))
    }

    func testKeepNoneWritesNoModelAndExportSaysWhy() throws {
        let space = try modelSpace(keep: "none")
        let out = path("run")
        XCTAssertEqual(try layersplit("search", space, "--output", out, "--quiet").status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/models"))
        let export = try layersplit("export", out, "--budget", "+100%", "-o", path("model.h5"))
        XCTAssertEqual(export.status, 1)
        XCTAssertTrue(export.stderr.contains("keep: none") && export.stderr.contains("keep: all"), export.stderr)
        XCTAssertEqual(export.stderr.split(separator: "\n").count, 1, export.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("model.h5")))
    }

    func testKeepIsChecked() throws {
        let space = try modelSpace(keep: "sometimes")
        let r = try layersplit("search", space, "--output", path("run"), "--quiet")
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("training.keep") && r.stderr.contains("front"), r.stderr)
    }

    func testTrainOutputWritesALoadableModel() throws {
        let model = path("trained.h5")
        let train = try layersplit("train", "--mask", "TS", "--units", "linear:16,linear:16", "--tasks", "2",
                                   "--steps", "20", "--quiet", "--output", model)
        XCTAssertEqual(train.status, 0, train.stderr)
        let network = try WeightsFile.makeModel(from: model)
        XCTAssertEqual(network.mask.description, "TS")
        let info = try TrainedModelFile.info(model)
        XCTAssertEqual(info.accuracy?.count, 2)
        XCTAssertEqual(info.normalization?.count, 2)
        XCTAssertEqual(info.steps, 20)
    }

    /// The accuracy column of `layersplit evaluate`'s task lines (between the header and the mean).
    static func accuracies(_ stdout: String) -> [Double] {
        let lines = stdout.split(separator: "\n").map(String.init)
        guard let header = lines.firstIndex(where: { $0.hasPrefix("task ") }) else { return [] }
        return lines[(header + 1)...].prefix { !$0.hasPrefix("mean") }.compactMap {
            $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Double($0) }
        }
    }
}
