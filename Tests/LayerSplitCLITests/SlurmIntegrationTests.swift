import Foundation
import XCTest

/// A real Slurm: scripts/slurm-local.sh starts a one-node cluster (munged, slurmctld, slurmd) in a temporary
/// folder with its own ports; `layersplit slurm --submit` sends searches to it as job arrays; the merge jobs
/// merge, plan and submit the next stages themselves; the results must equal single-process runs bit for bit
/// (timings apart). Where Slurm cannot start, the test fails with the reason: it never skips.
final class SlurmIntegrationTests: XCTestCase {
    typealias T = ShardTestSupport

    func testSearchesSplitAcrossSlurmArraysEqualSingleProcessRuns() throws {
        let folder = try T.makeFolder("layersplit-slurm")
        let cluster = folder + "/cluster"
        let script = T.root.appendingPathComponent("scripts/slurm-local.sh").path
        let bash = URL(fileURLWithPath: "/bin/bash")
        // Stop the daemons by their pids however the test ends.
        addTeardownBlock {
            let stop = try? T.run(bash, [script, "stop", cluster])
            if let stop, stop.status != 0 { print("slurm-local.sh stop: \(stop.text)") }
            try? FileManager.default.removeItem(atPath: folder)
        }
        let started = Date()
        let start = try T.run(bash, [script, "start", cluster])
        guard start.status == 0 else {
            return XCTFail("""
                a local Slurm could not start, so the cluster test cannot run (make setup installs slurmctld slurmd \
                munge slurm-client; the script needs root):
                \(start.text)
                """)
        }
        print("local Slurm up in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        var env = ProcessInfo.processInfo.environment
        env["SLURM_CONF"] = cluster + "/slurm.conf"
        let sinfo = try T.run(URL(fileURLWithPath: "/usr/bin/env"), ["sinfo", "-h", "-o", "%t %c"], environment: env)
        XCTAssertEqual(sinfo.stdout.split(separator: " ").first, "idle", sinfo.text)

        // One stage (exhaustive: one array and its merge), and several (greedy with successive halving: each
        // merge job plans the next stage and submits its array and merge from inside the job).
        let searches = [
            ("exhaustive", T.space(study: "exhaustive", strategy: "exhaustive", units: 3), 3),
            ("greedy", T.space(study: "greedy", strategy: "{name: greedy, successive_halving: {min_steps: 20, eta: 3}}",
                               units: 3, steps: 60, evalEvery: 20), 3),
        ]
        var outputs: [(name: String, out: String, single: String)] = []
        for (name, yaml, tasks) in searches {
            let space = folder + "/\(name).yaml"
            try yaml.write(toFile: space, atomically: true, encoding: .utf8)
            let out = folder + "/\(name)-slurm"
            let submit = try T.layersplit("slurm", space, "--tasks", "\(tasks)", "--output", out, "--time", "10", "--mem", "1G",
                                          "--submit", environment: env)
            XCTAssertEqual(submit.status, 0, submit.text)
            XCTAssertTrue(submit.stdout.contains("submitted stage 0: array job "), submit.stdout)
            outputs.append((name, out, folder + "/\(name)-single"))
        }
        // The single-process runs, while Slurm works.
        for (name, _, single) in outputs {
            let r = try T.layersplit("search", folder + "/\(name).yaml", "--output", single, "--quiet")
            XCTAssertEqual(r.status, 0, r.text)
        }
        // Wait for the last merge jobs: slurm/state says "complete" or "failed: ..." (no sbatch --wait: it polls
        // every 10 s or so).
        let deadline = Date().addingTimeInterval(150)
        func state(_ out: String) -> String {
            (try? String(contentsOfFile: out + "/slurm/state", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        }
        while Date() < deadline, !outputs.allSatisfy({ state($0.out) == "complete" || state($0.out).hasPrefix("failed") }) {
            usleep(200_000)
        }
        print("searches on Slurm done \(String(format: "%.1f", Date().timeIntervalSince(started))) s after the cluster started")
        for (name, out, single) in outputs {
            let jobs = (try? String(contentsOfFile: out + "/slurm/jobs", encoding: .utf8)) ?? ""
            guard state(out) == "complete" else {
                let logs = (try? FileManager.default.contentsOfDirectory(atPath: out + "/slurm/logs")) ?? []
                let tails = logs.sorted().map { name in
                    "--- \(name)\n" + ((try? String(contentsOfFile: out + "/slurm/logs/" + name, encoding: .utf8)) ?? "").suffix(1500)
                }.joined(separator: "\n")
                let queue = try T.run(URL(fileURLWithPath: "/usr/bin/env"), ["squeue"], environment: env)
                XCTFail("\(name): the Slurm run did not complete (state '\(state(out))')\njobs:\n\(jobs)\nsqueue:\n\(queue.text)\n\(tails)")
                continue
            }
            try T.assertSameResult(out, single, "\(name) on Slurm")
            // Every array had at least 3 tasks' worth of shards and each ran in its own task.
            XCTAssertTrue(jobs.contains("stage 0: array job ") && jobs.contains("(tasks 0-2)"), jobs)
            let logs = try FileManager.default.contentsOfDirectory(atPath: out + "/slurm/logs")
            for i in 0..<3 { XCTAssertTrue(logs.contains { $0.hasPrefix("shard-\(i)-job") }, "\(name): no output of array task \(i): \(logs)") }
            if name == "greedy" {
                XCTAssertGreaterThanOrEqual(jobs.split(separator: "\n").count, 3, "greedy with halving runs several stages:\n\(jobs)")
            }
        }
        let queue = try T.run(URL(fileURLWithPath: "/usr/bin/env"), ["squeue", "-h"], environment: env)
        XCTAssertEqual(queue.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "", "jobs left in the queue")
    }
}
