import Foundation
import LayerSplitStore
import XCTest

/// `layersplit search`, `front` and `best` end to end on tiny synthetic studies.
final class SearchCLITests: CLITestCase {
    func space(_ name: String = "tiny.yaml", steps: Int = 40, seeds: Int = 2, extra: String = "", budget: String = "",
               units: String = "[linear:16, linear:16]") throws -> String {
        let text = """
        study: tiny
        model:
          units: \(units)
        data:
          synthetic: {kind: multi-domain, tasks: 2, classes: 4, features: 16, train: 64, test: 64}
          validation: 0.25
        strategy: exhaustive
        training: {steps: \(steps), batch_size: 16, lr: 0.05, eval_every: 20}
        pretrain: {steps: 20}
        seeds: \(seeds)
        \(budget)
        \(extra)
        """
        let p = path(name)
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    /// candidates.csv without its wall-time column.
    func table(_ folder: String) throws -> [String] {
        let lines = try String(contentsOfFile: folder + "/candidates.csv", encoding: .utf8).split(separator: "\n")
        let seconds = lines[0].split(separator: ",").firstIndex(of: "seconds")!
        return lines.map { $0.split(separator: ",", omittingEmptySubsequences: false).enumerated().filter { $0.offset != seconds }.map(\.element).joined(separator: ",") }
    }

    func testSearchWritesReportsAndRepeatsExactly() throws {
        let s = try space()
        let a = try layersplit("search", s, "--output", path("a"), "--quiet")
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertTrue(a.stdout.contains("tiny: 4 candidates"), a.stdout)
        for f in ["log.h5", "candidates.csv", "front.csv", "front.json", "front.svg", "summary.md", "pretrained/seed0.h5", "pretrained/seed1.h5"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: path("a/" + f)), f)
        }
        let b = try layersplit("search", s, "--output", path("b"), "--quiet")
        XCTAssertEqual(b.status, 0, b.stderr)
        XCTAssertEqual(try table(path("a")), try table(path("b")), "same seeds, same CSV")
        XCTAssertEqual(try table(path("a")).count, 5)

        let front = try layersplit("front", path("a"))
        XCTAssertEqual(front.status, 0, front.stderr)
        XCTAssertTrue(front.stdout.contains("SS "), front.stdout)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("a/front.json")))) as! [String: Any]
        XCTAssertEqual(json["tasks"] as? [String], ["domain0", "domain1"])
        let best = try layersplit("best", path("a"), "--budget", "+0%")
        XCTAssertEqual(best.status, 0, best.stderr)
        XCTAssertTrue(best.stdout.hasPrefix("SS "), best.stdout)
        let none = try layersplit("best", path("a"), "--budget", "10")
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("fits max_params 10"), none.stderr)
    }

    func testResumeAfterKillRetrainsNothing() throws {
        let s = try space(steps: 400, seeds: 2)
        let out = path("run")
        let p = Process()
        p.executableURL = try binary()
        p.arguments = ["search", s, "--output", out, "--quiet"]
        try p.run()
        // Kill it once at least two trials are in the log.
        let deadline = Date().addingTimeInterval(60)
        var before = 0
        while Date() < deadline {
            before = (try? RunLog.open(at: out + "/log.h5").trialsInOrder.count) ?? 0
            if before >= 2 { break }
            usleep(20_000)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        before = try RunLog.open(at: out + "/log.h5").trialsInOrder.count
        XCTAssertGreaterThanOrEqual(before, 2)
        XCTAssertLessThan(before, 8, "the run must be killed before it finishes")

        let again = try layersplit("search", s, "--output", out)   // not a terminal: one line per trial
        XCTAssertEqual(again.status, 0, again.stderr)
        let skipped = again.stderr.components(separatedBy: "already in the log, not retrained").count - 1
        XCTAssertEqual(skipped, before, again.stderr)
        let records = try RunLog.open(at: out + "/log.h5").trialsInOrder
        XCTAssertEqual(records.count, 8, "4 masks x 2 seeds")
        XCTAssertEqual(Set(records.map(\.key.id)).count, 8, "no trial twice")

        // The result equals an uninterrupted run's.
        let clean = try layersplit("search", s, "--output", path("clean"), "--quiet")
        XCTAssertEqual(clean.status, 0, clean.stderr)
        XCTAssertEqual(try table(out), try table(path("clean")))
    }

    func testChangedSpaceIsRefusedUnlessForced() throws {
        let out = path("run")
        XCTAssertEqual(try layersplit("search", try space(steps: 20, seeds: 1), "--output", out, "--quiet").status, 0)
        let changed = try space(steps: 30, seeds: 1)
        let refused = try layersplit("search", changed, "--output", out, "--quiet")
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("different version") && refused.stderr.contains("--force"), refused.stderr)
        let forced = try layersplit("search", changed, "--output", out, "--quiet", "--force")
        XCTAssertEqual(forced.status, 0, forced.stderr)
        let kept = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix("log.") && $0 != "log.h5" }
        XCTAssertEqual(kept.count, 1, "the old log is kept beside the new one")
    }

    func testMoreSeedsContinueTheLogAndTrainOnlyTheNewSeeds() throws {
        let out = path("run")
        let first = try layersplit("search", try space(steps: 20, seeds: 2), "--output", out)
        XCTAssertEqual(first.status, 0, first.stderr)
        let masks = try RunLog.open(at: out + "/log.h5").trialsInOrder.count / 2
        // The same study with a third seed (and a comment): the two logged seeds are reused.
        let more = try space(steps: 20, seeds: 3, extra: "# one more seed")
        let r = try layersplit("search", more, "--output", out)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("adds seed(s) 2; the 2 logged seed(s) are reused"), r.stderr)
        XCTAssertEqual(r.stderr.components(separatedBy: "already in the log, not retrained").count - 1, 2 * masks, r.stderr)
        let records = try RunLog.open(at: out + "/log.h5").trialsInOrder
        XCTAssertEqual(records.count, 3 * masks)
        XCTAssertEqual(records.filter { $0.key.seed == 2 }.count, masks, "only the new seed trained")
        XCTAssertEqual(try RunLog.open(at: out + "/log.h5").info.searchSpaceHash, RunLog.hash(ofSearchSpace: try String(contentsOfFile: more, encoding: .utf8)))
        // Fewer seeds is another study: refused as before.
        let fewer = try layersplit("search", try space(steps: 20, seeds: 1), "--output", out, "--quiet")
        XCTAssertNotEqual(fewer.status, 0)
        XCTAssertTrue(fewer.stderr.contains("different version"), fewer.stderr)
    }

    func assertSpaceError(_ text: String, contains expected: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let p = path("bad.yaml")
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        let r = try layersplit("search", p, "--output", path("bad-out"), "--quiet")
        XCTAssertEqual(r.status, 2, "exit status for \(expected): \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line: \(r.stderr)", file: file, line: line)
        for e in expected { XCTAssertTrue(r.stderr.contains(e), "'\(e)' not in: \(r.stderr)", file: file, line: line) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad-out/log.h5")), "nothing written", file: file, line: line)
    }

    func testBadSearchSpacesGiveOneClearLine() throws {
        let good = try String(contentsOfFile: try space(), encoding: .utf8)
        try assertSpaceError(good + "\nbudgte: {max_params: 1M}\n", contains: ["bad.yaml:", "budgte", "unknown key", "valid keys"])
        try assertSpaceError(good.replacingOccurrences(of: "steps: 40", with: "steps: forty"),
                             contains: ["bad.yaml:8:", "training.steps", "whole number"])
        try assertSpaceError(good.replacingOccurrences(of: "synthetic: {kind: multi-domain, tasks: 2, classes: 4, features: 16, train: 64, test: 64}",
                                                       with: "tasks:\n    - {name: a, source: {idx: /no/such/folder}}"),
                             contains: ["bad.yaml:", "data.tasks[0].source", "/no/such/folder"])
        try assertSpaceError(good + "\nbudget: {max_params: 500}\n", contains: ["bad.yaml:", "budget", "fits no mask", "smallest"])
        try assertSpaceError(good.replacingOccurrences(of: "linear:16, linear:16", with: "linear:16, lstm:16"),
                             contains: ["bad.yaml:3:", "model.units[1]", "unknown unit kind 'lstm'"])
    }
}
