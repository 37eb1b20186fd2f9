import Foundation
import XCTest
@testable import LayerSplitStore
import _TestSupport

/// The run log's crash-safety proof: a writer process appending candidates in a loop is killed with SIGKILL
/// at random moments, many times; after every kill the log must open and hold exactly the candidates
/// appended before it (a prefix c0, c1, ..., each complete and equal to what was written), never fewer than
/// the previous time.
final class RunLogKillTests: StoreTestCase {
    func testKilledWriterLeavesAnOpenableLogWithEveryFinishedCandidate() throws {
        let binary = try layersplitBinary()
        let log = path("log.h5")
        var logged = 0
        var rng = SystemRandomNumberGenerator()
        let kills = 40
        let start = Date()
        var killedDuringAppends = 0
        for round in 0..<kills {
            let writer = Process()
            writer.executableURL = binary
            writer.arguments = ["test-log-writer", "--log", log, "--from", "\(logged)", "--count", "100000"]
            writer.standardOutput = FileHandle.nullDevice
            let errors = Pipe()
            writer.standardError = errors
            try writer.run()
            // Start-up takes some milliseconds; kill anywhere from before the first append to many appends in.
            usleep(UInt32.random(in: 2_000...90_000, using: &rng))
            kill(writer.processIdentifier, SIGKILL)
            writer.waitUntilExit()
            XCTAssertEqual(writer.terminationReason, .uncaughtSignal,
                           "round \(round): the writer stopped by itself: \(String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")

            guard RunLog.exists(at: log) else {
                XCTAssertEqual(logged, 0, "round \(round): the log disappeared")
                continue
            }
            let records = try RunLog.open(at: log, searchSpace: "kill test\n").trialsInOrder
            XCTAssertGreaterThanOrEqual(records.count, logged, "round \(round): trials were lost")
            for (i, r) in records.enumerated() {
                XCTAssertTrue(same(r, SampleTrials.trial(i)), "round \(round): trial \(i) differs:\n\(r)\n\(SampleTrials.trial(i))")
            }
            if records.count > logged { killedDuringAppends += 1 }
            logged = records.count
        }
        let temporaries = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains(".tmp-") }
        XCTAssertLessThanOrEqual(temporaries.count, 1, "stale temporary files pile up: \(temporaries)")
        print("kill test: \(kills) kills in \(String(format: "%.1f", Date().timeIntervalSince(start))) s, \(logged) candidates logged, \(killedDuringAppends) rounds appended before the kill, \(temporaries.count) temporary file(s) left")
        XCTAssertGreaterThan(logged, 0, "the writer never got to append: kill later")
    }
}

/// The built `layersplit` binary (`LayersplitBinary.url()`).
func layersplitBinary() throws -> URL { try LayersplitBinary.url() }
