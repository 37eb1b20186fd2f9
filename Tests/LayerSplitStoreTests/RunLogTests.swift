import Foundation
import LayerSplitEngine
import LayerSplitSearch
import XCTest
@testable import LayerSplitStore

/// A trial's metrics as text, so that NaN compares equal to NaN (a diverged trial's curve holds one).
func same(_ a: TrialResult, _ b: TrialResult) -> Bool { "\(a)" == "\(b)" }

final class RunLogTests: StoreTestCase {
    func info(_ space: String = "model: mlp\nbudget: 0.5\n", tasks: [String] = ["a", "b", "c"]) -> RunInfo {
        RunInfo(searchSpace: space, toolVersion: "0.1.0", seed: 42, study: "demo", model: "input 4; units linear:8",
                taskNames: tasks, allSharedParams: 1234, searchSpaceFile: "/x/demo.yaml", attributes: ["note": "free text"])
    }

    func testTrialsRunsAndInfoRoundTripThroughJournalAndSnapshot() throws {
        let p = path("log.h5")
        let log = try RunLog.create(at: p, info: info())
        XCTAssertFalse(RunLog.exists(at: p), "nothing is written before the first trial")
        let trials = (0..<20).map { SampleTrials.trial($0) }
        for t in trials { try log.save(t) }
        let run = RunLog.Run(command: "layersplit search a.yaml --threads 2", machine: "EPYC, 2 cores", finished: "2026-01-01T00:00:00Z", wallSeconds: 12.5, trained: 20)
        try log.appendRun(run)
        try log.close()

        // From both files, from the snapshot alone, and from the journal alone: the same trials, in order.
        let journal = log.journalPath
        let both = try RunLog.open(at: p, searchSpace: "model: mlp\nbudget: 0.5\n")
        try FileManager.default.moveItem(atPath: journal, toPath: journal + ".away")
        let snapshotOnly = try RunLog.open(at: p)
        try FileManager.default.moveItem(atPath: journal + ".away", toPath: journal)
        try FileManager.default.moveItem(atPath: p, toPath: p + ".away")
        let journalOnly = try RunLog.open(at: p)
        try FileManager.default.moveItem(atPath: p + ".away", toPath: p)
        for (name, back) in [("both", both), ("snapshot", snapshotOnly), ("journal", journalOnly)] {
            XCTAssertEqual(back.trialsInOrder.count, trials.count, name)
            for (a, b) in zip(back.trialsInOrder, trials) { XCTAssertTrue(same(a, b), "\(name): \(a.key) differs:\n\(a)\n\(b)") }
            XCTAssertEqual(back.runs, [run], name)
            XCTAssertEqual(back.info.study, "demo", name)
            XCTAssertEqual(back.info.taskNames, ["a", "b", "c"], name)
            XCTAssertEqual(back.info.allSharedParams, 1234, name)
            XCTAssertEqual(back.info.searchSpaceFile, "/x/demo.yaml", name)
            XCTAssertEqual(back.info.attributes, ["note": "free text"], name)
            XCTAssertEqual(back.info.searchSpaceHash, RunLog.hash(ofSearchSpace: "model: mlp\nbudget: 0.5\n"), name)
            XCTAssertTrue(back.result(for: trials[7].key).map { same($0, trials[7]) } ?? false, name)
        }
    }

    /// Every number of a new log is stored as a number: no attribute or dataset holds digits as text.
    func testEveryNumberInANewLogIsNumeric() throws {
        let p = path("log.h5")
        let log = try RunLog.create(at: p, info: info())
        for i in 0..<5 { try log.save(SampleTrials.trial(i)) }
        try log.appendRun(RunLog.Run(command: "c", machine: "m", finished: "2026-01-01T00:00:00Z", wallSeconds: 1, trained: 5))
        try log.close()
        let file = try HDF5File(opening: p)
        defer { try? file.close() }
        XCTAssertEqual(try file.attribute(Int64.self, "format_version"), 2)
        XCTAssertEqual(try file.attribute(Int64.self, "all_shared_params"), 1234)
        XCTAssertEqual(try file.info(of: "/trials/accuracy").shape, [5, 3])
        XCTAssertEqual(try file.info(of: "/trials/loss").shape, [5, 3], "per-task losses, not a sum")
        XCTAssertEqual(try file.info(of: "/curves/train_loss").shape, [20, 3], "per-task training losses, not a sum")
        XCTAssertEqual(try file.info(of: "/trials/steps").elementType, .int64)
        XCTAssertEqual(try file.info(of: "/trials/seed").elementType, .uint64)
        let textAttributes = try file.attributeNames().compactMap { try? file.stringAttribute($0) }
        for paths in [try file.datasetPaths(under: "/")] {
            for d in paths where try file.info(of: d).elementType == .string {
                for v in try file.readStrings(d) { XCTAssertNil(Double(v), "\(d) holds a number as text: \(v)") }
            }
        }
        for v in textAttributes { XCTAssertNil(Double(v), "an attribute holds a number as text: \(v)") }
    }

    func testRefusesAnotherSearchSpaceAndAnExistingLog() throws {
        let p = path("log.h5")
        let log = try RunLog.create(at: p, info: info("a: 1\n"))
        try log.save(SampleTrials.trial(0))
        try log.close()
        assertStoreError(.exists, object: nil, try RunLog.create(at: p, info: info("a: 1\n")))
        assertStoreError(.wrongFormat, object: "/@search_space_hash", try RunLog.open(at: p, searchSpace: "a: 2\n"))
        XCTAssertNoThrow(try RunLog.open(at: p, searchSpace: "a: 2\n", allowDifferentSearchSpace: true))
        XCTAssertEqual(try RunLog.openOrCreate(at: p, info: info("a: 1\n")).trialsInOrder.count, 1)
        assertStoreError(.exists, object: SampleTrials.trial(0).key.id, try RunLog.open(at: p).save(SampleTrials.trial(0)))
    }

    func testAdoptingASearchSpaceIsDurable() throws {
        let p = path("log.h5")
        let log = try RunLog.create(at: p, info: info("seeds: 1\n"))
        try log.save(SampleTrials.trial(0))
        try log.adoptSearchSpace(text: "seeds: 2\n")
        try log.save(SampleTrials.trial(1))
        XCTAssertEqual(try RunLog.open(at: p).info.searchSpaceHash, RunLog.hash(ofSearchSpace: "seeds: 2\n"), "read while the writer has it open")
        try log.close()
        try FileManager.default.removeItem(atPath: p)   // the journal alone says it too
        XCTAssertEqual(try RunLog.open(at: p).info.searchSpace, "seeds: 2\n")
    }

    /// A kill during a write leaves a torn last line: readers drop it, the next writer cuts it away; a damaged
    /// line before the end is corruption, never skipped.
    func testTornJournalTailIsDroppedAndCutAway() throws {
        let p = path("log.h5")
        let log = try RunLog.create(at: p, info: info())
        for i in 0..<3 { try log.save(SampleTrials.trial(i)) }
        try log.close()
        let journal = log.journalPath
        try FileManager.default.removeItem(atPath: p)   // the journal is the truth
        let good = try Data(contentsOf: URL(fileURLWithPath: journal))
        let record = try Journal.encode(.trial(JournalTrial(SampleTrials.trial(3))))
        for cut in [1, 17, record.count / 2, record.count - 1] {
            try (good + Data(record.prefix(cut))).write(to: URL(fileURLWithPath: journal))
            XCTAssertEqual(try RunLog.open(at: p).trialsInOrder.count, 3, "torn after \(cut) bytes")
        }
        // A full line with a wrong checksum at the end is torn as well.
        var bad = record
        bad[20] ^= 1
        try (good + Data(bad)).write(to: URL(fileURLWithPath: journal))
        let reopened = try RunLog.open(at: p)
        XCTAssertEqual(reopened.trialsInOrder.count, 3)
        try reopened.save(SampleTrials.trial(3))
        try reopened.close()
        let after = try Data(contentsOf: URL(fileURLWithPath: journal))
        XCTAssertEqual(after, good + Data(record), "the torn bytes were cut before the new record")
        // Damage in the middle is an error naming the line.
        var middle = [UInt8](after)
        middle[good.count - 30] ^= 1
        try Data(middle).write(to: URL(fileURLWithPath: journal))
        try FileManager.default.removeItem(atPath: p)
        let error = assertStoreError(.corrupt, object: nil, try RunLog.open(at: p))
        XCTAssertTrue(error?.description.contains("line 4") ?? false, "\(String(describing: error))")
    }

    /// The snapshot names its journal: a journal of another run beside it is refused, not mixed in.
    func testJournalOfAnotherRunIsRefused() throws {
        let a = try RunLog.create(at: path("a/log.h5"), info: info())
        try FileManager.default.createDirectory(atPath: path("a"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: path("b"), withIntermediateDirectories: true)
        try a.save(SampleTrials.trial(0))
        try a.close()
        let b = try RunLog.create(at: path("b/log.h5"), info: info())
        try b.save(SampleTrials.trial(1))
        try b.close()
        try FileManager.default.removeItem(atPath: path("a/log.journal"))
        try FileManager.default.copyItem(atPath: path("b/log.journal"), toPath: path("a/log.journal"))
        assertStoreError(.corrupt, object: "header.id", try RunLog.open(at: path("a/log.h5")))
    }

    /// One writer per log: a second writer is refused at once; after the first closes, it may write.
    func testASecondWriterIsRefused() throws {
        let p = path("log.h5")
        let first = try RunLog.create(at: p, info: info())
        try first.save(SampleTrials.trial(0))
        let second = try RunLog.open(at: p)
        let error = assertStoreError(.writeFailed, object: nil, try second.save(SampleTrials.trial(1)))
        XCTAssertTrue(error?.description.contains("another process is writing") ?? false)
        try first.close()
        let third = try RunLog.open(at: p)
        XCTAssertNoThrow(try third.save(SampleTrials.trial(1)))
        try third.close()
    }

    /// Appends cost the same however long the log is; the snapshot is rewritten on a geometric schedule, so
    /// the bytes written stay within 3x the final files.
    func testSnapshotsFollowAGeometricSchedule() throws {
        let p = path("log.h5")
        let log = try RunLog.create(at: p, info: info())
        var inodes = Set<UInt64>()
        for i in 0..<300 {
            try log.save(SampleTrials.trial(i))
            var st = stat()
            if stat(p, &st) == 0 { inodes.insert(UInt64(st.st_ino) << 20 | UInt64(st.st_ctim.tv_nsec & 0xFFFFF)) }
        }
        try log.close()
        // 1, 2, 3, 5, 8, 12, ... 300: about log_1.5(300) rewrites, not 300.
        XCTAssertLessThanOrEqual(inodes.count, 20, "the snapshot was rewritten \(inodes.count) times for 300 trials")
        XCTAssertGreaterThanOrEqual(inodes.count, 8)
        XCTAssertEqual(try RunLog.open(at: p).trialsInOrder.count, 300)
    }

    func testVersion1LogsStillOpen() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/v1-rebuffi-adapters.h5").path
        let log = try RunLog.open(at: fixture)
        XCTAssertEqual(log.snapshotVersion, 1)
        XCTAssertEqual(log.trialsInOrder.count, 35)
        XCTAssertEqual(log.info.study, "rebuffi-adapters")
        XCTAssertEqual(log.info.taskNames.count, 3)
        XCTAssertGreaterThan(log.info.allSharedParams, 0)
        let t = try XCTUnwrap(log.result(for: TrialKey(mask: try SharingMask(parsing: "AASS"), seed: 3, steps: 200)))
        XCTAssertEqual(t.accuracy, [0.815, 0.974, 0.961])
        XCTAssertEqual(t.counts.stored, 80830)
        XCTAssertEqual(t.state, .done)
        XCTAssertEqual(log.runs.count, 3)
        XCTAssertEqual(log.info.attributes["migrated_from_version"], "1")

        // Continuing it (what `layersplit migrate` does) writes version 2 with the same trials.
        try FileManager.default.copyItem(atPath: fixture, toPath: path("log.h5"))
        let copy = try RunLog.open(at: path("log.h5"))
        try copy.writeSnapshot()
        try copy.close()
        let migrated = try RunLog.open(at: path("log.h5"))
        XCTAssertEqual(migrated.snapshotVersion, 2)
        XCTAssertEqual(migrated.trialsInOrder.count, 35)
        for (a, b) in zip(migrated.trialsInOrder, log.trialsInOrder) { XCTAssertTrue(same(a, b), "\(a.key)") }
        XCTAssertEqual(migrated.runs, log.runs)
    }

    func testTrialsThatDoNotFitTheColumnsAreRefused() throws {
        let log = try RunLog.create(at: path("log.h5"), info: info())
        var t = SampleTrials.trial(0)
        t.accuracy = [0.5]
        assertStoreError(.invalidArgument, object: t.key.id, try log.save(t))
        XCTAssertFalse(RunLog.exists(at: path("log.h5")), "nothing written")
    }
}
