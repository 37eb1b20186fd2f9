import Foundation
import LayerSplitData
import LayerSplitEngine
import XCTest

final class SyntheticSuiteTests: XCTestCase {
    func testSameSeedSameData() {
        let a = SyntheticSuite.multiDomain(tasks: 2, trainPerTask: 20, testPerTask: 10, seed: 3)
        let b = SyntheticSuite.multiDomain(tasks: 2, trainPerTask: 20, testPerTask: 10, seed: 3)
        XCTAssertEqual(a.map(\.train.x), b.map(\.train.x))
        XCTAssertNotEqual(a[0].train.x, SyntheticSuite.multiDomain(tasks: 2, trainPerTask: 20, testPerTask: 10, seed: 4)[0].train.x)
        let m = SyntheticSuite.multiTask(tasks: 3, trainPerTask: 32, testPerTask: 16, seed: 3)
        XCTAssertEqual(m.map(\.train.y), SyntheticSuite.multiTask(tasks: 3, trainPerTask: 32, testPerTask: 16, seed: 3).map(\.train.y))
    }

    func testSuitesAreBalancedQuickAndOfTheirKind() {
        let start = Date()
        let md = SyntheticSuite.multiDomain(validationPerTask: 64)
        let mt = SyntheticSuite.multiTask(validationPerTask: 64)
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.5, "generated well under a second")
        XCTAssertEqual(md.count, 4)
        XCTAssertEqual(mt.count, 4)
        for t in md + mt {
            XCTAssertEqual(t.train.count, 512)
            XCTAssertEqual(t.validation.count, 64)
            XCTAssertEqual(t.test.count, 256)
            XCTAssertEqual(t.shape, [64])
            XCTAssertLessThanOrEqual(t.train.classBalance.max - t.train.classBalance.min, 0.01, t.name)
        }
        // Multi-domain: same labels, different inputs per domain.
        XCTAssertEqual(md[0].train.y, md[1].train.y)
        XCTAssertNotEqual(md[0].train.x, md[1].train.x)
        // Multi-task: one input set, different labels per task.
        XCTAssertEqual(mt[0].train.x, mt[1].train.x)
        XCTAssertEqual(mt[0].validation.x, mt[3].validation.x)
        XCTAssertNotEqual(mt[0].train.y, mt[1].train.y)
        XCTAssertEqual(mt[0].classes, 4)
        // Features have about unit variance, so the default learning rates suit them.
        let x = md[0].train.x
        let variance = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(x.count)
        XCTAssertEqual(variance, 1, accuracy: 0.15)
    }

    /// The property the suites exist for, measured with the engine (the full 4-mask, 3-seed experiment is in
    /// SuiteExperiment): on the multi-domain suite task-specific bottom units (TTSS) beat task-specific top
    /// units (SSTT); on the multi-task suite the reverse; and neither suite is saturated.
    func testSpecificBottomsPayOffOnMultiDomainAndSpecificTopsOnMultiTask() throws {
        Threads.set(1)
        var md: [String: Double] = [:], mt: [String: Double] = [:]
        for mask in ["TTSS", "SSTT"] {
            for seed: UInt64 in [0, 1, 2] {
                md[mask, default: 0] += try trainedAccuracy(SyntheticSuite.multiDomain(testPerTask: 512, seed: seed), mask: mask, seed: seed) / 3
                mt[mask, default: 0] += try trainedAccuracy(SyntheticSuite.multiTask(testPerTask: 512, seed: seed), mask: mask, seed: seed) / 3
            }
        }
        print(String(format: "synthetic suites, mean test accuracy over 3 seeds: multi-domain TTSS %.3f SSTT %.3f; multi-task TTSS %.3f SSTT %.3f",
                     md["TTSS"]!, md["SSTT"]!, mt["TTSS"]!, mt["SSTT"]!))
        XCTAssertGreaterThan(md["TTSS"]!, md["SSTT"]! + 0.02, "multi-domain: specific bottoms should help more")
        XCTAssertGreaterThan(mt["SSTT"]!, mt["TTSS"]! + 0.02, "multi-task: specific tops should help more")
        for acc in Array(md.values) + Array(mt.values) {
            XCTAssertGreaterThan(acc, 0.6)
            XCTAssertLessThan(acc, 0.97, "not saturated, so masks can be told apart")
        }
    }
}
