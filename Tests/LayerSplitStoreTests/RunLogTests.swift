import Foundation
import LayerSplitEngine
import XCTest
@testable import LayerSplitStore

/// A deterministic record for index `i` (also what the kill test's writer appends).
func sampleRecord(_ i: Int, tasks: Int = 3, points: Int = 4) -> CandidateRecord {
    let acc = (0..<points).map { p in (0..<tasks).map { t in Double(p * 10 + t) / 100 + Double(i) / 1000 } }
    return CandidateRecord(
        id: "c\(i)", mask: i % 2 == 0 ? "TTSS" : "SSSS", seed: UInt64(i) &* 0x9E37_79B9_7F4A_7C15,
        trialKey: "steps=300,lr=0.05", parameterCounts: ParameterCounts(shared: 1000 + i, specific: 2000, heads: 30),
        curveSteps: (0..<points).map { ($0 + 1) * 100 }, lossCurve: (0..<points).map { 2.0 / Double($0 + 1) + Double(i) },
        accuracyCurve: acc, finalAccuracy: acc.last ?? [], finalLoss: (0..<tasks).map { 0.5 + Double($0) },
        status: i % 7 == 3 ? .diverged : .done, wallSeconds: 1.5 * Double(i), attributes: ["lr": "0.05", "index": "\(i)"])
}

final class RunLogTests: StoreTestCase {
    func testAppendAndReadBack() throws {
        let p = path("log.h5")
        let space = "model: mlp\nbudget: 0.5\n"
        let log = try RunLog.create(at: p, searchSpace: space, seed: 42, toolVersion: "0.1.0", attributes: ["study": "demo"])
        XCTAssertEqual(log.info.searchSpaceHash, RunLog.hash(ofSearchSpace: space))
        let records = (0..<5).map { sampleRecord($0) } + [
            CandidateRecord(id: "odd/id.with%chars", mask: "TTTT", status: .failed, attributes: ["error": "out of memory"]),
            CandidateRecord(id: ".hidden", mask: "SSSS", finalAccuracy: [0.5, 0.75], finalLoss: [1, 2]),
        ]
        for r in records { try log.append(r) }
        let back = try RunLog.open(at: p, searchSpace: space).records()
        XCTAssertEqual(back.count, records.count)
        for (a, b) in zip(records, back) {
            if a.meanAccuracy.isNaN {
                XCTAssertTrue(b.meanAccuracy.isNaN)
                var a2 = a, b2 = b
                a2.meanAccuracy = 0; b2.meanAccuracy = 0
                XCTAssertEqual(a2, b2)
            } else {
                XCTAssertEqual(a, b)
            }
        }
        XCTAssertEqual(back[6].meanAccuracy, 0.625)
        let info = try RunLog.readInfo(at: p)
        XCTAssertEqual(info.seed, 42)
        XCTAssertEqual(info.searchSpace, space)
        XCTAssertEqual(info.attributes["study"], "demo")
        // Duplicate ids and malformed records are refused; the log is unchanged.
        assertStoreError(.exists, object: "/candidates/c1", try log.append(sampleRecord(1)))
        var bad = sampleRecord(9)
        bad.lossCurve.removeLast()
        assertStoreError(.invalidArgument, object: "/candidates", try log.append(bad))
        XCTAssertEqual(try log.records().count, records.count)
        // No temporary files are left behind.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }

    func testRunRecordsAccumulateBesideCandidates() throws {
        let p = path("log.h5")
        let log = try RunLog.create(at: p, searchSpace: "x: 1\n", seed: 0, toolVersion: "0.1.0")
        XCTAssertEqual(try RunLog.runs(at: p), [], "a new log (and one from before run records) has none")
        let first = RunLog.Run(command: "layersplit search a.yaml --threads 2", machine: "EPYC, 2 cores",
                               finished: "2026-11-25T06:00:00Z", wallSeconds: 1295.7, trained: 40)
        try log.append(sampleRecord(0))
        try log.appendRun(first)
        try log.appendRun(RunLog.Run(command: "layersplit search a.yaml", machine: "m", finished: "t", wallSeconds: 0.5, trained: 0))
        let runs = try RunLog.runs(at: p)
        XCTAssertEqual(runs.count, 2)
        XCTAssertEqual(runs.first, first)
        XCTAssertEqual(runs.last?.trained, 0)
        XCTAssertEqual(try log.records().count, 1, "candidates are untouched")
    }

    func testSearchSpaceMismatchIsRefusedUnlessAllowed() throws {
        let p = path("log.h5")
        _ = try RunLog.create(at: p, searchSpace: "a: 1\n", seed: 1, toolVersion: "0.1.0")
        assertStoreError(.exists, object: nil, try RunLog.create(at: p, searchSpace: "a: 1\n", seed: 1, toolVersion: "0.1.0"))
        assertStoreError(.wrongFormat, object: "/@search_space_hash", try RunLog.open(at: p, searchSpace: "a: 2\n"))
        XCTAssertNoThrow(try RunLog.open(at: p, searchSpace: "a: 2\n", allowDifferentSearchSpace: true))
        XCTAssertNoThrow(try RunLog.openOrCreate(at: p, searchSpace: "a: 1\n", seed: 1, toolVersion: "0.1.0"))
        XCTAssertNoThrow(try RunLog.openOrCreate(at: path("new.h5"), searchSpace: "b", seed: 1, toolVersion: "0.1.0"))
    }

    /// Appends from several threads (or processes: the lock is the same flock) follow each other; none is lost.
    func testConcurrentAppendsAreSerialised() throws {
        let p = path("log.h5")
        let log = try RunLog.create(at: p, searchSpace: "s", seed: 1, toolVersion: "v")
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for i in 0..<10 {
                do { try log.append(sampleRecord(worker * 10 + i)) } catch { XCTFail("\(error)") }
            }
        }
        XCTAssertEqual(Set(try log.records().map(\.id)), Set((0..<40).map { "c\($0)" }))
    }

    func testStaleTemporaryFilesAreRemoved() throws {
        let p = path("log.h5")
        let log = try RunLog.create(at: p, searchSpace: "s", seed: 1, toolVersion: "v")
        // A temporary file of a writer that no longer runs (pid 2^22 + 1 is above Linux's default pid_max).
        let stale = path(".log.h5.tmp-4194305-77")
        try Data("partial".utf8).write(to: URL(fileURLWithPath: stale))
        try log.append(sampleRecord(0))
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale))
    }

    /// Appends stay cheap while the log grows (each one copies the file).
    func testAppendCostStaysSmall() throws {
        let p = path("log.h5")
        let log = try RunLog.create(at: p, searchSpace: "s", seed: 1, toolVersion: "v")
        let start = Date()
        for i in 0..<200 { try log.append(sampleRecord(i, tasks: 4, points: 10)) }
        let seconds = Date().timeIntervalSince(start)
        let size = (try FileManager.default.attributesOfItem(atPath: p)[.size] as? Int) ?? 0
        print("run log: 200 appends in \(String(format: "%.2f", seconds)) s, \(size / 1024) KiB (\(size / 200) bytes per candidate)")
        XCTAssertEqual(try log.records().count, 200)
        XCTAssertLessThan(seconds, 20)
    }
}
