import Foundation
import LayerSplitEngine
import LayerSplitReport
import LayerSplitSearch
import XCTest

final class ReportTests: XCTestCase {
    func candidate(_ mask: String, stored: Int, acc: [Double], state: TrialState = .done) throws -> Candidate {
        let m = try SharingMask(parsing: mask)
        let counts = ParameterCounts(shared: stored - 10, specific: 0, heads: 10)
        let trials = acc.enumerated().map { seed, a in
            TrialResult(key: TrialKey(mask: m, seed: UInt64(seed), steps: 100), state: state, counts: counts,
                        accuracy: [a, a], loss: [0.1, 0.1], curve: [], stepsTrained: 100, seconds: 1)
        }
        return Candidate(mask: m, steps: 100, counts: counts, trials: trials)
    }

    func report() throws -> FrontReport {
        FrontReport(study: "demo", taskNames: ["a", "b"], candidates: [
            try candidate("SS", stored: 100, acc: [0.70, 0.72]),
            try candidate("TS", stored: 150, acc: [0.80, 0.81]),
            try candidate("ST", stored: 150, acc: [0.75, 0.76]),
            try candidate("TT", stored: 200, acc: [0.79, 0.80]),
            try candidate("AA", stored: 120, acc: [0.99, 0.99], state: .diverged),
        ], allSharedCount: 100)
    }

    func testFrontBestAndPairs() throws {
        let r = try report()
        XCTAssertEqual(r.front.map { r.candidates[$0].mask.description }, ["SS", "TS"], "TT is dominated; diverged AA is never on the front")
        let d = try XCTUnwrap(r.neighbourDifferences[1])
        XCTAssertEqual(d.mean, 0.095, accuracy: 1e-9)
        XCTAssertEqual([d.winsB, d.seeds], [2, 2])
        XCTAssertEqual(r.best(under: .maxParams(149))?.mask.description, "SS")
        XCTAssertEqual(r.best(under: .maxSpecificFraction(0.5))?.mask.description, "TS")
        XCTAssertNil(r.best(under: .maxParams(99)), "no mask fits")
    }

    func testCSVJSONAndSVG() throws {
        let r = try report()
        let csv = TableWriter.candidatesCSV(r).split(separator: "\n")
        XCTAssertEqual(csv.count, 6)
        XCTAssertEqual(csv[0], "mask,family,steps,stored_params,shared_params,specific_params,head_params,acc_a,acc_b,mean_acc,std_acc,seeds,status,seconds,on_front")
        XCTAssertTrue(csv.contains { $0.hasPrefix("AA,adapters-everywhere") && $0.contains(",diverged,") })
        let json = try JSONSerialization.jsonObject(with: Data(TableWriter.frontJSON(r).utf8)) as! [String: Any]
        XCTAssertEqual((json["front"] as! [[String: Any]]).map { $0["mask"] as! String }, ["SS", "TS"])
        let svg = FrontPlot.svg(r)
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertEqual(svg.components(separatedBy: "<circle cx").count - 1, 5 + 5, "five points and five legend entries")
        XCTAssertTrue(svg.contains("stored parameters"))
        let md = SummaryWriter.markdown(r, provenance: .init(command: "layersplit run x.yaml", wallSeconds: 3, machine: "test", trainingSteps: 800))
        XCTAssertTrue(md.contains("| `TS` | bottom-1 |"))
        XCTAssertTrue(md.contains("none fits") == false)
    }

    /// Task names that need quoting stay whole and distinct in the CSV header (RFC 4180), and a statistic that
    /// one seed cannot give (`std_acc`) is an empty cell, not 0.
    func testCSVQuotesNamesKeepsColumnsUniqueAndLeavesMissingStatisticsEmpty() throws {
        let r = FrontReport(study: "demo", taskNames: ["a b", "a,b", "say \"hi\"", "mean"], candidates: [
            try candidate("SS", stored: 100, acc: [0.70]),
            try candidate("TS", stored: 150, acc: [0.80, 0.82]),
        ], allSharedCount: 100)
        for text in [TableWriter.candidatesCSV(r), TableWriter.frontCSV(r)] {
            let rows = Self.parseCSV(text)
            let header = rows[0]
            XCTAssertEqual(Array(header[7..<11]), ["acc_a b", "acc_a,b", "acc_say \"hi\"", "acc_mean"], text)
            XCTAssertEqual(Set(header).count, header.count, "unique columns: \(header)")
            XCTAssertTrue(rows.allSatisfy { $0.count == header.count }, text)
            let std = header.firstIndex(of: "std_acc")!
            let ss = rows.first { $0[0] == "SS" }!, ts = rows.first { $0[0] == "TS" }!
            XCTAssertEqual(ss[std], "", "one seed: no standard deviation")
            XCTAssertEqual(Double(ts[std])!, 0.014142, accuracy: 1e-5)
        }
        XCTAssertTrue(TableWriter.candidatesCSV(r).hasPrefix("mask,family,steps,stored_params,shared_params,specific_params,head_params,acc_a b,\"acc_a,b\",\"acc_say \"\"hi\"\"\",acc_mean,"))
        // Two names that are the same column get a suffix.
        let twice = FrontReport(study: "demo", taskNames: ["x", "x"], candidates: [try candidate("SS", stored: 100, acc: [0.7])], allSharedCount: 100)
        XCTAssertEqual(Array(Self.parseCSV(TableWriter.candidatesCSV(twice))[0][7..<9]), ["acc_x", "acc_x_2"])
    }

    /// A minimal RFC 4180 reader: quoted fields with doubled quotes, commas and line breaks inside.
    static func parseCSV(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
        var chars = Array(text)[...]
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { field.append("\""); chars.removeFirst() } else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                row.append(field); field = ""
            } else if c == "\n" {
                row.append(field); rows.append(row); row = []; field = ""
            } else { field.append(c) }
        }
        return rows
    }

    /// `report()` with four seeds (seed 2 repeats seed 0, seed 3 seed 1): enough to choose on half and score
    /// on the other half.
    func report4() throws -> FrontReport {
        FrontReport(study: "demo", taskNames: ["a", "b"], candidates: [
            try candidate("SS", stored: 100, acc: [0.70, 0.72, 0.70, 0.72]),
            try candidate("TS", stored: 150, acc: [0.80, 0.81, 0.80, 0.81]),
            try candidate("ST", stored: 150, acc: [0.75, 0.76, 0.75, 0.76]),
            try candidate("TT", stored: 200, acc: [0.79, 0.80, 0.79, 0.80]),
            try candidate("AA", stored: 120, acc: [0.99, 0.99, 0.99, 0.99], state: .diverged),
        ], allSharedCount: 100)
    }

    func testComparisonsPairMatchedBudgetsAndExactMatches() throws {
        let c = Comparisons(try report4())
        XCTAssertEqual(c.allShared?.mask.description, "SS")
        XCTAssertEqual(c.independent?.mask.description, "TT")
        // TS (bottom-1) and ST (top-1) store the same 150 parameters: one matched budget, one exact match.
        XCTAssertEqual(c.matchedBudgets.count, 1, "the 200-parameter budget admits no bottom-k or top-k mask within 5%")
        let m = try XCTUnwrap(c.matchedBudgets.first)
        XCTAssertEqual([m.limit], [150])
        XCTAssertEqual([m.bottom?.mask.description, m.top?.mask.description], ["TS", "ST"])
        XCTAssertEqual(try XCTUnwrap(m.difference).mean, 0.05, accuracy: 1e-9, "bottom − top")
        XCTAssertEqual(try XCTUnwrap(m.difference).seeds, 2, "scored on seeds 1 and 3")
        XCTAssertEqual(c.exactMatches.count, 1)
        let p = try XCTUnwrap(c.exactMatches.first)
        XCTAssertEqual([p.b.mask.description, p.a.mask.description], ["TS", "ST"], "b is the lower placement")
        XCTAssertEqual([p.difference.winsB, p.difference.seeds], [4, 4])
        let ts = try XCTUnwrap(try report4().candidates.first { $0.mask.description == "TS" })
        XCTAssertEqual(try XCTUnwrap(Comparisons.against(c.independent, ts)).mean, 0.01, accuracy: 1e-9)
        XCTAssertNil(Comparisons.against(c.independent, try XCTUnwrap(c.independent)), "no row against itself")

        let md = SummaryWriter.markdown(try report4(), provenance: .init(command: "x", wallSeconds: 1, machine: "m", trainingSteps: 1))
        XCTAssertTrue(md.contains("| `TS` | bottom-1 | 150 | 1.50 | 80.50 | 0.58 | +9.50 ± 0.58 (4/4), 95% CI [+8.58, +10.42]: better | +1.00 ± 0.00 (4/4), 95% CI [+1.00, +1.00]: better |"), md)
        XCTAssertTrue(md.contains("| 150 | `TS` (150) 81.00 | `ST` (150) 76.00 | +5.00 ± 0.00 (2/2), 95% CI [+5.00, +5.00]: better |"), md)
        XCTAssertTrue(md.contains("| 150 (150) | `TS` 80.50 | `ST` 75.50 | +5.00 ± 0.00 (4/4), 95% CI [+5.00, +5.00]: better |"), md)
        XCTAssertTrue(md.contains("Multiple comparisons: 6 paired comparisons at 95% here"), md)
    }

    func testNoExactMatchesIsSaid() throws {
        let r = FrontReport(study: "d", taskNames: ["a", "b"], candidates: [
            try candidate("SS", stored: 100, acc: [0.7]), try candidate("ST", stored: 130, acc: [0.8]),
        ], allSharedCount: 100)
        XCTAssertTrue(Comparisons(r).exactMatches.isEmpty)
        XCTAssertTrue(SummaryWriter.markdown(r, provenance: .init(command: "x", wallSeconds: 1, machine: "m", trainingSteps: 1)).contains("None: no two trained masks"))
    }

    /// Identical units make O(n²) equal-size pairs and thousands of candidates: the summary stays readable
    /// (the front in full, the most accurate candidates, one pair per size) and says what it left out.
    func testSummaryStaysReadableAtAnySize() throws {
        var cs: [Candidate] = []
        for m in 0..<256 {
            let mask = (0..<8).map { (m >> $0) & 1 == 1 ? "T" : "S" }.joined()
            let k = m.nonzeroBitCount
            let a = 0.7 + 0.01 * Double(k) + 0.0001 * Double(m % 7)
            cs.append(try candidate(mask, stored: 100 + 50 * k, acc: [a, a + 0.001]))
        }
        let r = FrontReport(study: "big", taskNames: ["a", "b"], candidates: cs, allSharedCount: 110)
        let c = Comparisons(r)
        XCTAssertEqual(c.exactMatches.count, 7, "sizes with 1..7 specific units each table one pair: lowest against highest placement")
        XCTAssertGreaterThan(c.exactMatchesLeftOut, 2_000)
        XCTAssertTrue(c.exactMatches.allSatisfy { $0.b.mask.states.firstIndex(of: .specific)! < $0.a.mask.states.firstIndex(of: .specific)! })
        let md = SummaryWriter.markdown(r, provenance: .init(command: "x", wallSeconds: 1, machine: "test", trainingSteps: 1))
        XCTAssertLessThan(md.utf8.count, 40_000, "summary.md must stay readable")
        XCTAssertTrue(md.contains("more pairs of equal size are not tabled"))
        XCTAssertTrue(md.contains("64 of 256; every candidate is in candidates.csv"))
        for i in r.front { XCTAssertTrue(md.contains("| `\(r.candidates[i].mask)` |"), "front candidate \(r.candidates[i].mask) is tabled") }
        XCTAssertTrue(md.contains("| `TTTTTTTT` |"), "the most accurate candidate is tabled")
        XCTAssertEqual(TableWriter.candidatesCSV(r).split(separator: "\n").count, 257, "every candidate is in candidates.csv")
    }
}
