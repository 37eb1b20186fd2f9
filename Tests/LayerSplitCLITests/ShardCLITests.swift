import Foundation
import LayerSplitEngine
import LayerSplitSearch
import LayerSplitStore
import LayerSplitRun
import XCTest

/// `layersplit search --shard`, `layersplit merge` and `layersplit slurm` (scripts only) through the built binary:
/// merged shards equal the single-process run, and each fault gets a clear message with nothing lost or
/// counted twice. The real Slurm run is in SlurmIntegrationTests.
final class ShardCLITests: XCTestCase {
    typealias T = ShardTestSupport
    var folder = ""

    override func setUpWithError() throws { folder = try T.makeFolder("layersplit-shards") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    /// Writes a search space and runs it in one process into `<name>-single`.
    func prepare(_ name: String, _ yaml: String) throws -> (space: String, single: String) {
        let space = folder + "/\(name).yaml"
        try yaml.write(toFile: space, atomically: true, encoding: .utf8)
        let single = folder + "/\(name)-single"
        let r = try T.layersplit("search", space, "--output", single, "--quiet")
        XCTAssertEqual(r.status, 0, r.text)
        return (space, single)
    }

    func shard(_ space: String, _ output: String, _ shard: String, _ extra: String...) throws -> T.Result {
        try T.run(try T.binary(), ["search", space, "--output", output, "--shard", shard, "--quiet"] + extra)
    }

    func trials(in log: String) throws -> [String] { try RunLog.open(at: log).trialsInOrder.map(\.key.id) }

    // MARK: - Equal to one process

    func testShardsSideBySideMergeIntoTheSingleProcessResult() throws {
        let (space, single) = try prepare("exhaustive", T.space(study: "exhaustive", strategy: "exhaustive"))
        let out = folder + "/sharded"
        let started = try (0..<3).map { try T.start(try T.binary(), ["search", space, "--output", out, "--shard", "\($0)/3"]) }
        for (i, s) in started.enumerated() {
            let r = T.finish(s)
            XCTAssertEqual(r.status, 0, r.text)
            XCTAssertTrue(r.stderr.contains("stage 0 (round 1): "), r.stderr)
            XCTAssertTrue(r.stdout.contains("shard \(i)/3: trained"), r.stdout)
        }
        // 8 masks x 2 seeds, balanced: 5 or 6 trials each, each trained by exactly one shard.
        let perShard = try (0..<3).map { try trials(in: out + "/shards/shard-\($0)-of-3.h5") }
        XCTAssertEqual(perShard.map(\.count).reduce(0, +), 16)
        XCTAssertEqual(Set(perShard.joined()).count, 16, "no trial trained by two shards")
        XCTAssertTrue(perShard.allSatisfy { (5...6).contains($0.count) }, "\(perShard.map(\.count))")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/log.h5"), "shards never write the merged log")

        let merge = try T.layersplit("merge", out)
        XCTAssertEqual(merge.status, 0, merge.text)
        XCTAssertTrue(merge.stdout.contains("appended 16 new trials"), merge.stdout)
        XCTAssertTrue(merge.stdout.contains("search complete: 8 candidates"), merge.stdout)
        try T.assertSameResult(out, single, "3 shards side by side")
        // The merged log holds the trials in the order one process trains them.
        XCTAssertEqual(try trials(in: out + "/log.h5"), try trials(in: single + "/log.h5"))

        // Merging again counts nothing twice and changes nothing.
        let again = try T.layersplit("merge", out)
        XCTAssertEqual(again.status, 0, again.text)
        XCTAssertTrue(again.stdout.contains("appended 0 new trials") && again.stdout.contains("(16 in all)"), again.stdout)
        try T.assertSameResult(out, single, "merged twice")
    }

    func testGreedyAndHalvingRunStageByStage() throws {
        let cases = [
            ("greedy", T.space(study: "greedy", strategy: "greedy", units: 4, budget: "{max_specific_fraction: 1.0}")),
            ("halving", T.space(study: "halving", strategy: "{name: exhaustive, successive_halving: {min_steps: 10, eta: 3}}",
                                steps: 90, evalEvery: 10)),
        ]
        for (name, yaml) in cases {
            let (space, single) = try prepare(name, yaml)
            let out = folder + "/\(name)-sharded"
            var stage = 0
            while true {
                for i in 0..<3 {
                    let r = try shard(space, out, "\(i)/3", "--stage", "\(stage)")
                    XCTAssertEqual(r.status, 0, "\(name) stage \(stage) shard \(i): \(r.text)")
                }
                let merge = try T.layersplit("merge", out, "--shards", "3", "--stage", "\(stage)")
                if merge.status == 0 { break }
                XCTAssertEqual(merge.status, 3, "\(name) stage \(stage): \(merge.text)")
                XCTAssertTrue(merge.stdout.contains("stage \(stage + 1) ("), merge.stdout)
                stage += 1
                guard stage < 12 else { return XCTFail("\(name): no end after 12 stages") }
            }
            XCTAssertGreaterThanOrEqual(stage, 2, "\(name) has several stages")
            try T.assertSameResult(out, single, name)
        }
    }

    /// A shard started for a stage whose earlier stage is incomplete says so and fails.
    func testAShardOfALaterStageSaysAnEarlierOneIsIncomplete() throws {
        let (space, _) = try prepare("greedy", T.space(study: "greedy", strategy: "greedy", units: 4))
        let out = folder + "/greedy-sharded"
        let r = try shard(space, out, "0/2", "--stage", "1")
        XCTAssertEqual(r.status, 1, r.text)
        XCTAssertTrue(r.stderr.contains("stage 0 (round 1) is incomplete"), r.stderr)
        XCTAssertTrue(r.stderr.contains("stage 1 cannot start"), r.stderr)
    }

    // MARK: - Faults

    func testShardIndexOutOfRangeAndBadShardText() throws {
        let (space, _) = try prepare("small", T.space(study: "small", strategy: "families", units: 2, seeds: 1))
        for (text, fragment) in [("3/3", "shard index 3 is out of range for 3 shards: use 0/3 to 2/3"),
                                 ("-1/2", "out of range"), ("1/0", "at least 1 shard"), ("2", "expected I/N")] {
            let r = try T.run(try T.binary(), ["search", space, "--output", folder + "/x", "--shard=\(text)"])
            XCTAssertNotEqual(r.status, 0, text)
            XCTAssertTrue(r.stderr.contains(fragment), "\(text): \(r.stderr)")
        }
        // From Slurm's variables: a task outside 0..<count.
        var env = ProcessInfo.processInfo.environment
        env["SLURM_ARRAY_TASK_ID"] = "5"
        env["SLURM_ARRAY_TASK_COUNT"] = "3"
        env["SLURM_ARRAY_TASK_MIN"] = "0"
        let r = try T.run(try T.binary(), ["search", space, "--output", folder + "/x"], environment: env)
        XCTAssertEqual(r.status, 1, r.text)
        XCTAssertTrue(r.stderr.contains("Slurm array task 5") && r.stderr.contains("--array=0-2"), r.stderr)
        // Inside an array task without --shard, the task's shard is used.
        env["SLURM_ARRAY_TASK_ID"] = "1"
        let inside = try T.run(try T.binary(), ["search", space, "--output", folder + "/x"], environment: env)
        XCTAssertEqual(inside.status, 0, inside.text)
        XCTAssertTrue(inside.stderr.contains("shard 1/3 (from SLURM_ARRAY_TASK_ID"), inside.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/x/shards/shard-1-of-3.h5"))
    }

    func testTwoProcessesNeverTrainTheSameShard() throws {
        let (space, _) = try prepare("small", T.space(study: "small", strategy: "families", units: 2, seeds: 1))
        let out = folder + "/sharded"
        try FileManager.default.createDirectory(atPath: out + "/shards", withIntermediateDirectories: true)
        // Hold shard 1/2's lock the way a running shard does.
        let held = try XCTUnwrap(try FileLock.tryLock(ShardFiles.lockPath(out, try Shard(index: 1, count: 2))))
        let r = try shard(space, out, "1/2")
        XCTAssertEqual(r.status, 1, r.text)
        XCTAssertTrue(r.stderr.contains("shard 1/2 of \(out) is being trained by another process (pid \(getpid())"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/shards/shard-1-of-2.h5"))
        // Another shard of the same run is not affected, and once released the shard runs.
        XCTAssertEqual(try shard(space, out, "0/2").status, 0)
        held.unlock()
        XCTAssertEqual(try shard(space, out, "1/2").status, 0)
    }

    func testAShardKilledMidwayAndRerunLosesAndRepeatsNothing() throws {
        let (space, single) = try prepare("exhaustive", T.space(study: "exhaustive", strategy: "exhaustive", units: 4, steps: 90))
        let out = folder + "/sharded"
        XCTAssertEqual(try shard(space, out, "0/2").status, 0)
        let log = out + "/shards/shard-1-of-2.h5"
        let started = try T.start(try T.binary(), ["search", space, "--output", out, "--shard", "1/2", "--quiet"])
        // SIGKILL once its log holds a trial (or after 20 s at most).
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, started.0.isRunning, ((try? RunLog.open(at: log).trialsInOrder)?.count ?? 0) < 1 { usleep(5_000) }
        kill(started.0.processIdentifier, SIGKILL)
        _ = T.finish(started)
        let before = (try? trials(in: log)) ?? []
        XCTAssertLessThan(before.count, 16, "killed before it finished")

        let merge = try T.layersplit("merge", out)
        XCTAssertEqual(merge.status, 1, merge.text)
        XCTAssertTrue(merge.stderr.contains("shard 1/2: \(16 - before.count) trial"), merge.stderr)
        XCTAssertTrue(merge.stderr.contains(before.isEmpty ? "no shard log" : "its log has \(before.count) trial"), merge.stderr)

        let rerun = try T.run(try T.binary(), ["search", space, "--output", out, "--shard", "1/2"])
        XCTAssertEqual(rerun.status, 0, rerun.text)
        XCTAssertTrue(rerun.stdout.contains("trained \(16 - before.count) trial"), rerun.stdout)
        let after = try trials(in: log)
        XCTAssertEqual(Array(after.prefix(before.count)), before, "the trials before the kill are kept")
        XCTAssertEqual(Set(after).count, after.count)

        let final = try T.layersplit("merge", out)
        XCTAssertEqual(final.status, 0, final.text)
        try T.assertSameResult(out, single, "after a kill and a rerun")
        XCTAssertEqual(try trials(in: out + "/log.h5").count, 32)
    }

    func testMergeNamesMissingShardsAndRefusesAnotherSearchSpace() throws {
        let (space, single) = try prepare("exhaustive", T.space(study: "exhaustive", strategy: "exhaustive"))
        let out = folder + "/sharded"
        let none = try T.layersplit("merge", out)
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("no such results folder"), none.stderr)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let empty = try T.layersplit("merge", out)
        XCTAssertTrue(empty.stderr.contains("no shard logs"), empty.stderr)

        XCTAssertEqual(try shard(space, out, "0/3").status, 0)
        XCTAssertEqual(try shard(space, out, "2/3").status, 0)
        let missing = try T.layersplit("merge", out)
        XCTAssertEqual(missing.status, 1, missing.text)
        XCTAssertTrue(missing.stderr.contains("stage 0 (round 1) is incomplete"), missing.stderr)
        XCTAssertTrue(missing.stderr.contains("shard 1/3: ") && missing.stderr.contains("no shard log"), missing.stderr)
        XCTAssertFalse(missing.stderr.contains("shard 0/3:") || missing.stderr.contains("shard 2/3:"), missing.stderr)
        XCTAssertTrue(missing.stderr.contains("--shard 1/3"), missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/candidates.csv"), "no reports while incomplete")
        let merged = try trials(in: out + "/log.h5").count

        // A shard log of another search space (another version of the file) is refused, nothing written.
        let (otherSpace, _) = try prepare("other", T.space(study: "exhaustive", strategy: "exhaustive", steps: 61))
        XCTAssertEqual(try shard(otherSpace, folder + "/other-sharded", "1/3").status, 0)
        try FileManager.default.copyItem(atPath: folder + "/other-sharded/shards/shard-1-of-3.h5", toPath: out + "/shards/shard-1-of-3.h5")
        let refused = try T.layersplit("merge", out)
        XCTAssertEqual(refused.status, 1, refused.text)
        XCTAssertTrue(refused.stderr.contains("shard-1-of-3.h5 was written for another search space"), refused.stderr)
        XCTAssertEqual(try trials(in: out + "/log.h5").count, merged)
        // A shard run there refuses too.
        let refusedShard = try shard(space, out, "1/3")
        XCTAssertEqual(refusedShard.status, 1, refusedShard.text)
        XCTAssertTrue(refusedShard.stderr.contains("another search space"), refusedShard.stderr)

        try FileManager.default.removeItem(atPath: out + "/shards/shard-1-of-3.h5")
        XCTAssertEqual(try shard(space, out, "1/3").status, 0)
        let done = try T.layersplit("merge", out)
        XCTAssertEqual(done.status, 0, done.text)
        try T.assertSameResult(out, single, "after the missing shard ran")
    }

    func testAPlainSearchOverUnmergedShardsSaysMergeFirst() throws {
        let (space, single) = try prepare("exhaustive", T.space(study: "exhaustive", strategy: "exhaustive"))
        let out = folder + "/sharded"
        XCTAssertEqual(try shard(space, out, "0/3").status, 0)
        let plain = try T.layersplit("search", space, "--output", out, "--quiet")
        XCTAssertEqual(plain.status, 1, plain.text)
        XCTAssertTrue(plain.stderr.contains("of this study that log.h5 lacks") && plain.stderr.contains("layersplit merge \(out)"), plain.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/log.h5"), "nothing written")
        XCTAssertEqual(try T.layersplit("merge", out).status, 1, "incomplete, but shard 0's trials are now in log.h5")
        let resumed = try T.layersplit("search", space, "--output", out, "--quiet")
        XCTAssertEqual(resumed.status, 0, resumed.text)
        try T.assertSameResult(out, single, "a plain search after a partial merge")
    }

    /// Shards of two different counts over one run: trials found twice count once.
    func testOverlappingShardsCountEachTrialOnce() throws {
        let (space, single) = try prepare("exhaustive", T.space(study: "exhaustive", strategy: "exhaustive"))
        let out = folder + "/sharded"
        XCTAssertEqual(try shard(space, out, "0/2").status, 0)
        XCTAssertEqual(try shard(space, folder + "/elsewhere", "0/3").status, 0)
        XCTAssertEqual(try shard(space, folder + "/elsewhere", "1/3").status, 0)
        // Bring the 3-shard logs over: they overlap shard 0/2's trials.
        for i in 0..<2 {
            try FileManager.default.copyItem(atPath: folder + "/elsewhere/shards/shard-\(i)-of-3.h5", toPath: out + "/shards/shard-\(i)-of-3.h5")
        }
        XCTAssertEqual(try shard(space, out, "1/2").status, 0)
        let merge = try T.layersplit("merge", out)
        XCTAssertEqual(merge.status, 0, merge.text)
        XCTAssertTrue(merge.stdout.contains("appended 16 new trials") && merge.stdout.contains("counted once"), merge.stdout)
        try T.assertSameResult(out, single, "overlapping shards")
    }

    // MARK: - Scripts

    func testSlurmWritesScriptsFromTheOptions() throws {
        let (space, _) = try prepare("exhaustive", T.space(study: "exhaustive", strategy: "exhaustive"))
        let out = folder + "/cluster"
        let r = try T.layersplit("slurm", space, "--tasks", "4", "--partition", "short", "--time", "1:30:00", "--cpus", "2",
                                 "--mem", "4G", "--output", out)
        XCTAssertEqual(r.status, 0, r.text)
        XCTAssertTrue(r.stdout.contains("first: stage 0 (round 1), 16 trials to train, array tasks 0-3"), r.stdout)
        XCTAssertTrue(r.stdout.contains("sbatch --parsable --array=0-3 '\(out)/slurm/shards.sh' 0"), r.stdout)
        let shards = try String(contentsOfFile: out + "/slurm/shards.sh", encoding: .utf8)
        for line in ["#SBATCH --array=0-3", "#SBATCH --cpus-per-task=2", "#SBATCH --partition='short'", "#SBATCH --time='1:30:00'",
                     "#SBATCH --mem='4G'", "#SBATCH --requeue", "--shard \"${SLURM_ARRAY_TASK_ID}/4\"", "--threads 2", "'\(space)'"] {
            XCTAssertTrue(shards.contains(line), "'\(line)' not in:\n\(shards)")
        }
        let merge = try String(contentsOfFile: out + "/slurm/merge.sh", encoding: .utf8)
        for line in ["#SBATCH --partition='short'", "merge '\(out)' --shards 4 --stage \"$stage\"", "--dependency=afterany:"] {
            XCTAssertTrue(merge.contains(line), "'\(line)' not in:\n\(merge)")
        }
        XCTAssertEqual(try T.run(URL(fileURLWithPath: "/bin/bash"), ["-n", out + "/slurm/shards.sh"]).status, 0, "shards.sh parses")
        XCTAssertEqual(try T.run(URL(fileURLWithPath: "/bin/bash"), ["-n", out + "/slurm/merge.sh"]).status, 0, "merge.sh parses")

        for (option, value, fragment) in [("--tasks", "0", "--tasks must be from 1 to 10000"), ("--time", "soon", "--time 'soon'"),
                                          ("--mem", "lots", "--mem 'lots'"), ("--cpus", "0", "--cpus must be from 1 to 1024")] {
            var args = ["slurm", space, "--tasks", "2", "--output", out]
            if option == "--tasks" { args[3] = value } else { args += [option, value] }
            let bad = try T.run(try T.binary(), args)
            XCTAssertNotEqual(bad.status, 0, option)
            XCTAssertTrue(bad.stderr.contains(fragment), "\(option): \(bad.stderr)")
        }
    }

    func testArraySpecAndShardNames() throws {
        XCTAssertEqual(SlurmScripts.arraySpec([0, 1, 2, 3]), "0-3")
        XCTAssertEqual(SlurmScripts.arraySpec([2]), "2")
        XCTAssertEqual(SlurmScripts.arraySpec([3, 0, 2]), "0,2,3")
        XCTAssertEqual(Shard(logName: "shard-2-of-4.h5"), try Shard(index: 2, count: 4))
        XCTAssertNil(Shard(logName: "shard-4-of-4.h5"))
        XCTAssertNil(Shard(logName: "log.h5"))
        XCTAssertEqual(try Shard(parsing: " 1 / 3 ").logName, "shard-1-of-3.h5")
        let env = ["SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_STEP": "2"]
        XCTAssertEqual(try Shard.fromSlurm(environment: env), try Shard(index: 2, count: 3))
        XCTAssertNil(try Shard.fromSlurm(environment: [:]))
    }

    /// Longest processing time first: deterministic, every trial once, and the largest shard within 4/3 of the
    /// best possible split (and here within one trial of the mean).
    func testPlanBalancesByCostNotCount() throws {
        let spec = ModelSpec(inputShape: [64], units: Array(repeating: .linear(256), count: 4), taskClasses: [10, 10, 10, 10])
        let parameters = try ParameterModel(spec: spec)
        let cost = TrialCost(stepFLOPs: 6 * 128 * 200_000, parameters: parameters)
        let masks = MaskEnumerator(allowed: Array(repeating: [.shared, .specific], count: 4)).map { $0 }
        let keys = masks.flatMap { m in (0..<3).map { TrialKey(mask: m, seed: UInt64($0), steps: 300) } }
        let stage = Study.Stage(index: 0, round: 0, rung: 0, rungs: 1, keys: keys, continuingFrom: nil)
        for shards in [1, 2, 3, 5, 7, 48, 60] {
            let owners = ShardPlan.assign(stage, shards: shards, cost: cost)
            XCTAssertEqual(owners.count, keys.count)
            XCTAssertEqual(ShardPlan.assign(Study.Stage(index: 0, round: 0, rung: 0, rungs: 1, keys: keys.reversed(), continuingFrom: nil),
                                            shards: shards, cost: cost), owners, "the order of the stage does not matter")
            var load = [Double](repeating: 0, count: shards)
            for (k, s) in owners { load[s] += cost.cost(k) }
            let costs = keys.map { cost.cost($0) }
            let lowerBound = max(costs.reduce(0, +) / Double(shards), costs.max()!)
            XCTAssertLessThanOrEqual(load.max()!, lowerBound * 4 / 3 + 1e-6, "\(shards) shards")
            XCTAssertLessThanOrEqual(load.max()! - costs.reduce(0, +) / Double(shards), costs.max()!, "\(shards) shards")
        }
        // By count, 2 shards would each get two of these; by cost the heavy trial goes alone.
        let four = Array(keys.prefix(4))
        XCTAssertEqual(ShardPlan.assign(four, costs: [1, 3, 1, 1], shards: 2), [1, 0, 1, 1])
        // Ties are broken by trial id, whatever the order given.
        XCTAssertEqual(ShardPlan.assign(four, costs: [1, 1, 1, 1], shards: 2), [0, 1, 0, 1])
        XCTAssertEqual(ShardPlan.assign(four.reversed(), costs: [1, 1, 1, 1], shards: 2), [1, 0, 1, 0])
        XCTAssertGreaterThan(cost.cost(keys.last!), cost.cost(keys.first!), "all-specific costs more than all-shared")
    }
}
