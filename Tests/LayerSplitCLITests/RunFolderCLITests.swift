import Foundation
import LayerSplitStore
import _TestSupport
import XCTest

/// The run folder's guarantees end to end: one writer per folder, stale locks taken over, nothing reused
/// without matching provenance, `--force` sets aside everything, and failures leave the folder as it was.
final class RunFolderCLITests: CLITestCase {
    func space(_ name: String = "tiny.yaml", steps: Int = 40, pretrain: String = "{steps: 20}", output: String? = nil) throws -> String {
        try tinySpace(name, steps: steps, seeds: 1, pretrain: pretrain, lines: output.map { ["output: \($0)"] } ?? [])
    }

    /// Names of everything under `folder`, recursively, to check a folder is left as it was found.
    func listing(_ folder: String) -> [String] {
        (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? []).sorted()
    }

    func testASecondSearchIntoAFolderBeingWrittenIsRefusedNamingTheHolder() throws {
        let out = path("run")
        let long = try space("long.yaml", steps: 200_000)
        let first = try ProcessRunner.start(try binary(), ["search", long, "--output", out, "--quiet"])
        defer { kill(first.0.processIdentifier, SIGKILL); _ = ProcessRunner.finish(first) }
        // Wait until it holds the lock (its note names it).
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, ((try? String(contentsOfFile: out + "/.layersplit.lock", encoding: .utf8)) ?? "").isEmpty { usleep(10_000) }
        let second = try layersplit("search", try space(), "--output", out, "--quiet", "--force")
        XCTAssertEqual(second.status, 1, second.stderr)
        XCTAssertTrue(second.stderr.contains("is being written by another process (pid \(first.0.processIdentifier) on host"), second.stderr)
        XCTAssertTrue(second.stderr.contains("search \(long)"), "the holder's command is named: \(second.stderr)")
        XCTAssertEqual(second.stderr.split(separator: "\n").count, 1, second.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/previous"), "--force of the refused run set nothing aside")
    }

    func testALockLeftByAKilledRunIsTakenOver() throws {
        let out = path("run")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        // A note from a run that is gone: the kernel released its flock when it died.
        try "pid 999999 on host \(ProcessInfo.processInfo.hostName) since 2026-01-01T00:00:00Z: layersplit search x.yaml\n"
            .write(toFile: out + "/.layersplit.lock", atomically: false, encoding: .utf8)
        // And temporary files of killed writers.
        try Data("half".utf8).write(to: URL(fileURLWithPath: out + "/.summary.md.tmp-999999-1@\(ProcessInfo.processInfo.hostName)"))
        let r = try layersplit("search", try space(), "--output", out)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("removed 1 temporary file(s) of an earlier, killed run"), r.stderr)
        XCTAssertEqual(listing(out).filter { $0.contains(".tmp-") }, [])
        XCTAssertEqual(try String(contentsOfFile: out + "/.layersplit.lock", encoding: .utf8), "", "the holder clears its note when it ends")
    }

    func testLockFileThatIsASymlinkIsRefusedAndItsTargetUntouched() throws {
        let out = path("run")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let victim = path("victim.txt")
        try "precious\n".write(toFile: victim, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: out + "/.layersplit.lock", withDestinationPath: victim)
        let r = try layersplit("search", try space(), "--output", out, "--quiet")
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains(".layersplit.lock: is a symbolic link"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious\n")

        // Nor through a hard link (the holder truncates its lock file to write its note).
        try FileManager.default.removeItem(atPath: out + "/.layersplit.lock")
        try FileManager.default.linkItem(atPath: victim, toPath: out + "/.layersplit.lock")
        let h = try layersplit("search", try space(), "--output", out, "--quiet")
        XCTAssertEqual(h.status, 1)
        XCTAssertTrue(h.stderr.contains(".layersplit.lock: has 2 hard links"), h.stderr)
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious\n")
    }

    /// With one seed there is no spread: front.json leaves std_accuracy out and the tables print a dash, never 0.
    func testOneSeedHasNoStandardDeviation() throws {
        let out = path("run")
        XCTAssertEqual(try layersplit("search", try space(steps: 20), "--output", out, "--quiet").status, 0)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/front.json"))) as! [String: Any]
        for point in json["front"] as! [[String: Any]] { XCTAssertNil(point["std_accuracy"], "\(point)") }
        let front = try layersplit("front", out)
        XCTAssertEqual(front.status, 0, front.stderr)
        XCTAssertFalse(front.stdout.contains("0.0000 "), front.stdout)
    }

    func testAnEditedPretrainingRecipeRetrainsThePretraining() throws {
        let out = path("run")
        let first = try layersplit("search", try space(pretrain: "{steps: 20}"), "--output", out)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stderr.contains("pretraining seed 0: 20 steps"), first.stderr)
        let old = try Data(contentsOf: URL(fileURLWithPath: out + "/pretrained/seed0.h5"))

        // Same folder, new recipe, --force: everything the old run made is set aside and the backbone retrained.
        let forced = try layersplit("search", try space(pretrain: "{steps: 30}"), "--output", out, "--force")
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertTrue(forced.stderr.contains("set the earlier run aside in"), forced.stderr)
        XCTAssertTrue(forced.stderr.contains("pretraining seed 0: 30 steps"), forced.stderr)
        let aside = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: out + "/previous").first)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/previous/\(aside)/pretrained/seed0.h5")), old)
        for name in ["log.h5", "log.journal", "summary.md"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/previous/\(aside)/" + name), "\(name) set aside")
        }

        // A backbone of another recipe copied into a fresh folder is not reused either: its provenance differs.
        let other = path("other")
        try FileManager.default.createDirectory(atPath: other + "/pretrained", withIntermediateDirectories: true)
        try old.write(to: URL(fileURLWithPath: other + "/pretrained/seed0.h5"))
        let fresh = try layersplit("search", try space(pretrain: "{steps: 30}"), "--output", other)
        XCTAssertEqual(fresh.status, 0, fresh.stderr)
        XCTAssertTrue(fresh.stderr.contains("was made by another pretraining recipe, data or model; pretraining seed 0 again"), fresh.stderr)
        func accuracies(_ folder: String) throws -> [[Double]] { try RunLog.open(at: folder + "/log.h5").results.map(\.accuracy) }
        XCTAssertEqual(try accuracies(other), try accuracies(out), "retrained by the same recipe, the results equal the forced run's")
    }

    func testARunThatFailsBeforeItsFirstTrialLeavesTheFolderAsItFoundIt() throws {
        let bad = path("bad.h5")
        try Data(repeating: 7, count: 100).write(to: URL(fileURLWithPath: bad))
        // A folder that did not exist stays absent.
        let out = path("run")
        let r = try layersplit("search", try space(pretrain: "{init: \(bad)}"), "--output", out, "--quiet")
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains(bad), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "listing: \(listing(out))")
        // A folder that existed keeps exactly what it held; the corrected study then runs without --force.
        let kept = path("kept")
        try FileManager.default.createDirectory(atPath: kept, withIntermediateDirectories: true)
        try "mine\n".write(toFile: kept + "/notes.txt", atomically: true, encoding: .utf8)
        XCTAssertEqual(try layersplit("search", try space(pretrain: "{init: \(bad)}"), "--output", kept, "--quiet").status, 1)
        XCTAssertEqual(listing(kept), ["notes.txt"])
        let fixed = try layersplit("search", try space(), "--output", kept, "--quiet")
        XCTAssertEqual(fixed.status, 0, fixed.stderr)
    }

    func testOutputsThatAreNotFoldersGiveOneLine() throws {
        let file = path("a-file")
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        let r = try layersplit("search", try space(), "--output", file, "--quiet")
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: \(file): is a file, not a results folder; remove it or choose another output folder\n")

        let dangling = path("dangling")
        try FileManager.default.createSymbolicLink(atPath: dangling, withDestinationPath: path("nowhere"))
        let d = try layersplit("search", try space(), "--output", dangling, "--quiet")
        XCTAssertEqual(d.status, 1)
        XCTAssertEqual(d.stderr, "error: \(dangling): is a symbolic link to nothing; remove it or choose another output folder\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("nowhere")))

        let under = file + "/run"
        let u = try layersplit("search", try space(), "--output", under, "--quiet")
        XCTAssertEqual(u.status, 1)
        XCTAssertTrue(u.stderr.hasPrefix("error: \(under): cannot create the results folder ("), u.stderr)
        XCTAssertEqual(u.stderr.split(separator: "\n").count, 1, u.stderr)
    }

    func testForceWorksWhenTheOutputPathContainsH5() throws {
        let out = path("run.h5.d")
        XCTAssertEqual(try layersplit("search", try space(steps: 20), "--output", out, "--quiet").status, 0)
        let forced = try layersplit("search", try space(steps: 30), "--output", out, "--quiet", "--force")
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertEqual(try RunLog.open(at: out + "/log.h5").trialsInOrder.map(\.key.steps), [30, 30, 30, 30])
    }

    /// A full disk: one line naming the path and the system's reason, exit 1, never a crash; the rerun on the
    /// same full disk fails the same way; after space is freed, the run continues. Needs root to mount.
    func testADiskThatFillsUpGivesOneLineAndTheRerunDoesNotCrash() throws {
        try XCTSkipIf(getuid() != 0, "mounting a small tmpfs needs root")
        let mount = path("small")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let m = try ProcessRunner.run(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=320k", "tmpfs", mount])
        try XCTSkipIf(m.status != 0, "cannot mount a tmpfs here: \(m.stderr)")
        defer { _ = try? ProcessRunner.run(URL(fileURLWithPath: "/bin/umount"), [mount]) }
        // Fill most of it, so that the run fails part-way (pretrained weights, a trained model, the journal or
        // the snapshot). Room for the whole run, its trained models included, once the ballast goes.
        try Data(repeating: 0, count: 290_000).write(to: URL(fileURLWithPath: mount + "/ballast"))
        let out = mount + "/run"
        let s = try space(steps: 20, pretrain: "{steps: 20}")
        for attempt in 0..<2 {
            let r = try layersplit("search", s, "--output", out, "--quiet")
            XCTAssertEqual(r.status, 1, "attempt \(attempt): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("No space left on device"), "attempt \(attempt): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("error: \(mount)"), "attempt \(attempt): names the path: \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "attempt \(attempt): \(r.stderr)")
        }
        try FileManager.default.removeItem(atPath: mount + "/ballast")
        let r = try layersplit("search", s, "--output", out, "--quiet")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try RunLog.open(at: out + "/log.h5").trialsInOrder.count, 4)
        XCTAssertEqual(listing(out).filter { $0.contains(".tmp-") }, [], "no temporary file is left")
    }
}
