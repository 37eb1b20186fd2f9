import Foundation
import XCTest

/// `best --budget`, `front` and the written reports carry paired intervals and verdicts, end to end on a tiny
/// synthetic study with four seeds (enough for the split-half matched-budget comparison).
final class StatisticsCLITests: CLITestCase {
    func testBestAndFrontReportIntervalsAndVerdicts() throws {
        let space = try tinySpace(seeds: 4)
        let out = path("run")
        let search = try layersplit("search", space, "--output", out, "--quiet")
        XCTAssertEqual(search.status, 0, search.stderr)

        let best = try layersplit("best", out, "--budget", "+100%")
        XCTAssertEqual(best.status, 0, best.stderr)
        let lines = best.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].contains(" params (") && lines[0].hasSuffix("over 4 seed(s)"), best.stdout)
        XCTAssertTrue(lines[1].hasPrefix("cheapest mask indistinguishable from it"), best.stdout)
        if lines[1].contains("(95% paired interval contains 0)") {
            XCTAssertTrue(lines[2].contains(": indistinguishable"), best.stdout)
            XCTAssertTrue(lines[3].contains("seeds that would separate them, from the paired std: "), best.stdout)
        } else {
            XCTAssertTrue(lines[1].contains(" itself ("), best.stdout)
            XCTAssertTrue(lines.count == 2 || lines[3].contains(" (points): "), best.stdout)
        }

        let front = try layersplit("front", out)
        XCTAssertEqual(front.status, 0, front.stderr)
        XCTAssertTrue(front.stdout.contains("vs previous (paired, points; 95% CI; verdict)"), front.stdout)
        let steps = front.stdout.split(separator: "\n").dropFirst(3)
        XCTAssertTrue(steps.allSatisfy { $0.contains("; CI [") && ($0.hasSuffix("better") || $0.hasSuffix("indistinguishable") || $0.hasSuffix("worse")) }, front.stdout)

        let summary = try String(contentsOfFile: out + "/summary.md", encoding: .utf8)
        XCTAssertTrue(summary.contains("| vs previous (paired) | 95% CI | verdict |"), summary)
        XCTAssertTrue(summary.contains("| cheapest indistinguishable |"), summary)
        XCTAssertTrue(summary.contains("Each family's best is chosen on seeds 0, 2 and the pair is scored on the other seeds, 1, 3"), summary)
        let csv = try String(contentsOfFile: out + "/front.csv", encoding: .utf8)
        XCTAssertTrue(csv.hasPrefix("mask,") && csv.split(separator: "\n")[0].hasSuffix(",delta_vs_previous,delta_std,wins,losses,delta_ci_low,delta_ci_high,verdict"), csv)
    }
}
