import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitRun
import LayerSplitStore
import XCTest
import _TestSupport

/// The bad-input and fault matrix: hostile names and paths in Slurm scripts, planted links for pid files, numbers
/// far out of range, and options that would be silently ignored. Every case is refused before any work, with
/// one line, the expected exit status, and the output folder left as it was.
final class HardeningCLITests: CLITestCase {
    /// A tiny valid search space; each case replaces one line or adds some.
    static let base = """
        study: hard
        model:
          units: [linear:8, linear:8]
        data:
          synthetic: {kind: multi-domain, tasks: 2, classes: 3, features: 8, train: 24, test: 24}
          validation: 0.25
        strategy: exhaustive
        training: {steps: 4, batch_size: 4, eval_every: 2}
        seeds: 1

        """

    /// `base` with `replacements` applied (each must match) and `extra` appended.
    func spaceText(_ replacements: [(String, String)] = [], extra: String = "", file: StaticString = #filePath, line: UInt = #line) -> String {
        var text = Self.base
        for (old, new) in replacements {
            XCTAssertTrue(text.contains(old), "'\(old)' is not in the base search space", file: file, line: line)
            text = text.replacingOccurrences(of: old, with: new)
        }
        return text + extra
    }

    func write(_ text: String, _ name: String = "space.yaml") throws -> String {
        let p = path(name)
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    /// What a folder holds, recursively, with each file's contents: to see that nothing changed.
    func snapshot(_ folder: String) -> [String: Data] {
        var out: [String: Data] = [:]
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return out }
        for case let name as String in walker {
            out[name] = FileManager.default.contents(atPath: folder + "/" + name) ?? Data()
        }
        return out
    }

    /// A prepared output folder holding one file, to check that a refused command leaves it as it was.
    func preparedOutput() throws -> String {
        let out = path("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try "keep\n".write(toFile: out + "/sentinel", atomically: true, encoding: .utf8)
        return out
    }

    struct Case {
        var name: String
        var arguments: [String]
        var status: Int32
        var patterns: [String]
        /// Text that must not appear on standard error (raw Foundation errors, ArgumentParser's usage block).
        var absent: [String] = []
    }

    /// Runs the binary with `arguments`, stopping it after `seconds`: a refusal that regresses (`steps: 10^18`
    /// accepted again) fails the test instead of hanging it.
    func runLimited(_ arguments: [String], seconds: Double = 20) throws -> Result {
        let p = Process()
        p.executableURL = try binary()
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let timer = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: timer)
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        timer.cancel()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// Runs each case and checks its status, its message (one line when the status is LayerSplit's own 1 or 2)
    /// and that the output folder is unchanged.
    func check(_ cases: [Case], output: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let before = snapshot(output)
        for c in cases {
            let r = try runLimited(c.arguments)
            XCTAssertEqual(r.status, c.status, "\(c.name): exit status; stderr: \(r.stderr)", file: file, line: line)
            if c.status == 1 || c.status == 2 {
                XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(c.name): one line: \(r.stderr)", file: file, line: line)
            }
            for p in c.patterns {
                XCTAssertTrue(r.stderr.contains(p), "\(c.name): '\(p)' not in: \(r.stderr)", file: file, line: line)
            }
            if c.status == 1 || c.status == 2 {
                XCTAssertTrue(r.stderr.hasPrefix("error: "), "\(c.name): one error style: \(r.stderr)", file: file, line: line)
            }
            for p in c.absent + ["NSCocoaErrorDomain", "Error Domain=", "Usage:"] {
                XCTAssertFalse(r.stderr.contains(p), "\(c.name): '\(p)' in: \(r.stderr)", file: file, line: line)
            }
            XCTAssertEqual(snapshot(output), before, "\(c.name): the output folder changed", file: file, line: line)
        }
    }

    // MARK: - Numbers in search spaces

    func testOutOfRangeNumbersInSearchSpacesAreRefusedInOneLine() throws {
        let out = try preparedOutput()
        let table: [(String, [(String, String)], String, [String])] = [
            ("steps 10^18", [("steps: 4,", "steps: 1000000000000000000,")], "", ["space.yaml:8: training.steps", "at most 1000000000"]),
            ("steps beyond Int", [("steps: 4,", "steps: 99999999999999999999999,")], "", ["training.steps", "too large"]),
            ("batch size", [("batch_size: 4", "batch_size: 100000")], "", ["training.batch_size", "at most 65536"]),
            ("eval_every", [("eval_every: 2", "eval_every: 10000000000")], "", ["training.eval_every", "at most 1000000000"]),
            ("warmup", [("eval_every: 2", "eval_every: 2, warmup: 2000000000")], "", ["training.warmup"]),
            ("lr", [("eval_every: 2", "eval_every: 2, lr: 1e6")], "", ["training.lr", "at most 100"]),
            ("momentum", [("eval_every: 2", "eval_every: 2, momentum: 1.5")], "", ["training.momentum", "[0, 1)"]),
            ("pretrain steps", [], "pretrain: {steps: 5000000000}\n", ["pretrain.steps", "at most 1000000000"]),
            ("max_params 1e30", [], "budget: {max_params: 1e30}\n", ["budget.max_params", "10^12"]),
            ("max_params negative", [], "budget: {max_params: -5}\n", ["budget.max_params", "parameter count"]),
            ("max_params nan", [], "budget: {max_params: .nan}\n", ["budget.max_params", "parameter count"]),
            ("fraction negative", [], "budget: {max_specific_fraction: -0.5}\n", ["budget.max_specific_fraction", "0 or more"]),
            ("fraction absurd", [], "budget: {max_specific_fraction: 1e9}\n", ["budget.max_specific_fraction", "largest fraction"]),
            ("fraction infinite", [], "budget: {max_specific_fraction: .inf}\n", ["budget.max_specific_fraction"]),
            ("seed count", [("seeds: 1", "seeds: 100000000000")], "", ["space.yaml:9: seeds", "at most 10000"]),
            ("seed value", [("seeds: 1", "seeds: [0, 4294967296]")], "", ["seeds[1]", "below 4294967296"]),
            ("seed list length", [("seeds: 1", "seeds: [\((0...10_000).map(String.init).joined(separator: ", "))]")], "",
             ["seeds", "10001 seeds; at most 10000"]),
            ("unit width", [("[linear:8, linear:8]", "[linear:100000000, linear:8]")], "", ["model.units[0]", "width 100000000 is above the limit of 65536"]),
            ("too many masks", [("[linear:8, linear:8]", "[\(Array(repeating: "linear:4", count: 30).joined(separator: ", "))]")], "",
             ["model.units", "at most 1048576"]),
            ("random count", [("strategy: exhaustive", "strategy: {name: random, count: 100000000}")], "", ["strategy.count"]),
            ("halving eta", [("strategy: exhaustive", "strategy: {name: exhaustive, successive_halving: {min_steps: 2, eta: 1000}}")], "",
             ["strategy.successive_halving.eta", "at most 100"]),
            ("features 1e9", [("features: 8", "features: 1000000000")], "", ["data.synthetic.features", "at most 65536"]),
            ("train 1e8", [("train: 24", "train: 100000000")], "", ["data.synthetic.train", "at most 10000000"]),
            ("suite beyond memory", [("tasks: 2, classes: 3, features: 8, train: 24, test: 24", "tasks: 1000, classes: 3, features: 65536, train: 10000000, test: 10")], "",
             ["data.synthetic", "more than this machine's"]),
            ("trial beyond memory", [("[linear:8, linear:8]", "[\(Array(repeating: "linear:65536", count: 8).joined(separator: ", "))]")], "",
             ["model.units", "one trial needs about", "more than this machine's", "use narrower units"]),
            ("newline in study", [("study: hard", "study: \"evil\\ntouch PWNED $(id -u)\"")], "", ["space.yaml:1: study", "\\n", "contains a newline"]),
            ("control character in output", [], "output: \"out\\u0007\"\n", ["output", "control character 0x07"]),
        ]
        var cases: [Case] = []
        for (i, (name, replacements, extra, patterns)) in table.enumerated() {
            let space = try write(spaceText(replacements, extra: extra), "space\(i).yaml")
            cases.append(Case(name: name, arguments: ["search", space, "--output", out, "--quiet"], status: 2,
                              patterns: patterns.map { $0.replacingOccurrences(of: "space.yaml", with: "space\(i).yaml") }))
        }
        try check(cases, output: out)
        // The valid base space passes the same checks (and is refused only for its seed option below).
        let valid = try write(spaceText(), "valid.yaml")
        XCTAssertNoThrow(try SearchSpace.load(valid))
    }

    /// The memory estimate counts exactly the parameters of the largest mask of a linear model (the engine's
    /// own count), so that refusals are about real figures.
    func testTheMemoryEstimateCountsTheLargestMask() throws {
        let space = try SearchSpace(yaml: spaceText([("[linear:8, linear:8]", "[linear:32, linear:16, linear:8]")]), file: "x.yaml")
        let estimate = space.trialMemory(inputShape: [8], classes: [3, 3])
        let spec = space.modelSpec(inputShape: [8], classes: [3, 3])
        let counts = try ParameterModel(spec: spec).counts(for: .all(.specific, units: 3))
        XCTAssertEqual(estimate.parameters, Double(counts.stored))
        XCTAssertEqual(estimate.copies, 3, "weights, gradients, momentum (SGD 0.9 by default)")
        XCTAssertEqual(estimate.rows, 8, "batch 4 x 2 tasks")
        XCTAssertGreaterThan(estimate.bytes, 4 * 3 * Double(counts.stored))
    }

    // MARK: - Numbers and options on the command line

    func testOutOfRangeOptionsAndTheSeedOfSearchAreRefused() throws {
        let out = try preparedOutput()
        let space = try write(spaceText())
        let cases = [
            Case(name: "best 1e30", arguments: ["best", out, "--budget", "1e30"], status: 2, patterns: ["--budget '1e30'", "10^12"]),
            Case(name: "best +-25%", arguments: ["best", out, "--budget=+-25%"], status: 2, patterns: ["--budget '+-25%'", "0 or more"]),
            Case(name: "best +nan%", arguments: ["best", out, "--budget=+nan%"], status: 2, patterns: ["--budget '+nan%'", "finite"]),
            Case(name: "best +inf%", arguments: ["best", out, "--budget=+inf%"], status: 2, patterns: ["--budget '+inf%'"]),
            Case(name: "best +1e9%", arguments: ["best", out, "--budget=+1e9%"], status: 2, patterns: ["largest fraction"]),
            Case(name: "best -5", arguments: ["best", out, "--budget=-5"], status: 2, patterns: ["--budget '-5'", "parameter count"]),
            Case(name: "best 25%", arguments: ["best", out, "--budget=25%"], status: 2, patterns: ["+N%"]),
            Case(name: "search --seed", arguments: ["search", space, "--output", out, "--seed", "5"], status: 2,
                 patterns: ["--seed 5", "seeds: [5]"]),
            Case(name: "search --seed 0", arguments: ["search", space, "--output", out, "--seed", "0"], status: 2,
                 patterns: ["search takes its seeds from the search space"]),
            Case(name: "search --threads", arguments: ["search", space, "--output", out, "--threads", "100000"], status: 2,
                 patterns: ["--threads must be from 1 to 1024"]),
            Case(name: "search --shard", arguments: ["search", space, "--output", out, "--shard", "0/100000000000"], status: 2,
                 patterns: ["100000000000 shards: a search splits into at most 10000"]),
            Case(name: "train --steps", arguments: ["train", "--steps", "1000000000000000000"], status: 2,
                 patterns: ["--steps must be from 1 to 1000000000"]),
            Case(name: "train --units", arguments: ["train", "--units", "linear:100000000"], status: 2,
                 patterns: ["width 100000000 is above the limit of 65536"]),
            Case(name: "train --batch-size", arguments: ["train", "--batch-size", "1000000"], status: 2, patterns: ["--batch-size"]),
            Case(name: "slurm --tasks", arguments: ["slurm", space, "--tasks", "100000", "--output", out], status: 2,
                 patterns: ["--tasks must be from 1 to 10000"]),
        ]
        try check(cases, output: out)
    }

    // MARK: - Slurm scripts

    /// Runs `command` with bash in `folder`, with `extraPath` first on PATH.
    func bash(_ command: String, in folder: String, extraPath: String) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", command]
        p.currentDirectoryURL = URL(fileURLWithPath: folder)
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = extraPath + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func executable(_ name: String, _ text: String) throws -> String {
        let p = path(name)
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        chmod(p, 0o755)
        return p
    }

    func testHostileNamesAndPathsAreOnlyEverQuotedText() throws {
        let study = #"it's $(touch PWNED1) `touch PWNED2` "q" a  b"#
        let yamlStudy = study.replacingOccurrences(of: "\"", with: "\\\"")
        let space = try write(spaceText([("study: hard", "study: \"\(yamlStudy)\"")]))
        let out = path("o $(touch PWNED3) 'q'")
        // The jobs run a stand-in binary: merge.sh then records its state.
        let fake = try executable("fake-layersplit", "#!/bin/sh\nexit 0\n")
        let r = try layersplit("slurm", space, "--tasks", "2", "--output", out, "--layersplit", fake, "--partition", "short")
        XCTAssertEqual(r.status, 0, r.stderr)
        let hostile = [study, out, out + "/slurm", out + "/slurm/shards.sh", out + "/slurm/merge.sh",
                       out + "/slurm/logs/shard-%a-job%A.out", out + "/slurm/logs/merge-job%j.out"]
        for script in ["shards.sh", "merge.sh"] {
            let text = try String(contentsOfFile: out + "/slurm/" + script, encoding: .utf8)
            XCTAssertEqual(try run(URL(fileURLWithPath: "/bin/bash"), ["-n", out + "/slurm/" + script]).status, 0, "\(script) parses:\n\(text)")
            XCTAssertTrue(text.contains("'it'\\''s $(touch PWNED1)"), "the study is quoted in \(script):\n\(text)")
            XCTAssertTrue(text.contains("#SBATCH --output='"), text)
            // With every quoted name and path taken out, nothing of them is left outside quotes.
            var rest = text
            for h in hostile.sorted(by: { $0.count > $1.count }) { rest = rest.replacingOccurrences(of: SlurmScripts.quoted(h), with: "") }
            for fragment in ["$(touch", "`touch", "'q'", "\"q\""] {
                XCTAssertFalse(rest.contains(fragment), "'\(fragment)' outside quotes in \(script):\n\(text)")
            }
        }
        // Pasting the printed commands runs sbatch with the scripts' paths, and nothing else.
        let submit = r.stdout.components(separatedBy: "submit with:\n").last ?? ""
        XCTAssertTrue(submit.contains(SlurmScripts.quoted(out + "/slurm/shards.sh")), r.stdout)
        let bin = path("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        _ = try executable("bin/sbatch", "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> \"\(path("sbatch-args"))\"\necho 4242\n")
        let pasted = try bash(submit, in: folder.path, extraPath: bin)
        XCTAssertEqual(pasted.status, 0, pasted.stderr)
        let args = try String(contentsOfFile: path("sbatch-args"), encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(args, ["--parsable", "--array=0-1", out + "/slurm/shards.sh", "0",
                              "--dependency=afterany:4242", out + "/slurm/merge.sh", "0"])
        // Running the merge job (its #SBATCH lines are comments to bash) writes its state atomically, replacing a
        // planted link rather than writing through it.
        try "precious\n".write(toFile: path("victim"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: out + "/slurm/state", withDestinationPath: path("victim"))
        let merged = try bash("bash \(SlurmScripts.quoted(out + "/slurm/merge.sh")) 0", in: folder.path, extraPath: bin)
        XCTAssertEqual(merged.status, 0, merged.stderr)
        XCTAssertEqual(try String(contentsOfFile: out + "/slurm/state", encoding: .utf8), "complete\n")
        XCTAssertNil(try? FileManager.default.destinationOfSymbolicLink(atPath: out + "/slurm/state"), "the link was replaced")
        XCTAssertEqual(try String(contentsOfFile: path("victim"), encoding: .utf8), "precious\n")
        let made = try FileManager.default.contentsOfDirectory(atPath: folder.path) + (try FileManager.default.contentsOfDirectory(atPath: out))
        XCTAssertFalse(made.contains { $0.hasPrefix("PWNED") }, "nothing ran: \(made)")
    }

    func testControlCharactersNeverReachAScript() throws {
        let space = try write(spaceText())
        let out = try preparedOutput()
        let cases = [
            Case(name: "newline in study", arguments: ["slurm", try write(spaceText([("study: hard", "study: \"evil\\ntouch PWNED $(id -u)\"")]), "evil.yaml"),
                                                       "--tasks", "2", "--output", out], status: 2, patterns: ["evil.yaml:1: study", "contains a newline"]),
            Case(name: "newline in --output", arguments: ["slurm", space, "--tasks", "2", "--output", out + "/x\ntouch PWNED"], status: 2,
                 patterns: ["--output: ", "contains a newline"]),
            Case(name: "tab in --partition", arguments: ["slurm", space, "--tasks", "2", "--output", out, "--partition", "a\tb"], status: 2,
                 patterns: ["--partition: ", "contains a tab"]),
            Case(name: "newline after --mem", arguments: ["slurm", space, "--tasks", "2", "--output", out, "--mem", "4G\n"], status: 2,
                 patterns: ["--mem: ", "contains a newline"]),
            Case(name: "DEL in --time", arguments: ["slurm", space, "--tasks", "2", "--output", out, "--time", "1:00\u{7F}"], status: 2,
                 patterns: ["--time: ", "control character 0x7F"]),
            Case(name: "% in --output", arguments: ["slurm", space, "--tasks", "2", "--output", out + "/100%j"], status: 2,
                 patterns: ["--output: ", "contains '%'"]),
        ]
        try check(cases, output: out)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains("PWNED") }, [])
    }

    // MARK: - Lock and pid files

    func testPlantedLinksForPidFilesAreRefusedAndTheirTargetsUntouched() throws {
        let space = try write(spaceText())
        let out = path("run")
        try FileManager.default.createDirectory(atPath: out + "/shards", withIntermediateDirectories: true)
        let victim = path("victim")
        try "precious\n".write(toFile: victim, atomically: true, encoding: .utf8)
        let symbolic = out + "/shards/.shard-0-of-2.pid", hard = out + "/shards/.shard-1-of-2.pid"
        try FileManager.default.createSymbolicLink(atPath: symbolic, withDestinationPath: victim)
        XCTAssertEqual(link(victim, hard), 0)
        for (shard, pidFile, problem) in [("0/2", symbolic, "is a symbolic link"), ("1/2", hard, "has 2 hard links")] {
            let r = try layersplit("search", space, "--output", out, "--shard", shard, "--quiet")
            XCTAssertEqual(r.status, 1, "\(shard): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(pidFile + ": " + problem), r.stderr)
            XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious\n", "\(shard): the target is untouched")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/shards/shard-\(shard.prefix(1))-of-2.h5"), "nothing trained")
        }
    }

    // MARK: - Exit statuses and messages

    /// Every bad input exits 2 and every runtime failure 1, each with one line starting `error: `: usage errors
    /// included (ArgumentParser's own status would be 64), unknown commands named as such, missing files named
    /// on the command line, YAML syntax errors at their real line, and no raw Foundation error text.
    func testExitStatusesAndMessagesHaveOneStyle() throws {
        let out = try preparedOutput()
        let space = try write(spaceText())
        let bad = try write(spaceText([("seeds: 1", "seeds: 1\nmodel: [unclosed")]), "bad.yaml")
        let tab = try write(spaceText([("strategy: exhaustive", "strategy: exhaustive\n\tbroken: 1")]), "tab.yaml")
        let readOnly = "/proc/layersplit-test-\(getpid())"
        let cases = [
            Case(name: "unknown command", arguments: ["frobnicate"], status: 2, patterns: ["error: unknown command 'frobnicate'; see layersplit --help"]),
            Case(name: "unknown command with options", arguments: ["frobnicate", "--output", out], status: 2, patterns: ["unknown command 'frobnicate'"]),
            Case(name: "missing space (default command)", arguments: [path("missing.yaml"), "--output", out], status: 2,
                 patterns: ["missing.yaml: no such search-space file"]),
            Case(name: "missing space", arguments: ["search", path("missing.yml"), "--output", out], status: 2, patterns: ["missing.yml: no such search-space file"]),
            Case(name: "unknown option", arguments: ["search", space, "--output", out, "--zzz"], status: 2,
                 patterns: ["error: unknown option '--zzz'; see layersplit search --help"]),
            Case(name: "unknown option of best", arguments: ["best", out, "--budget", "1M", "--frob"], status: 2, patterns: ["unknown option '--frob'"]),
            Case(name: "best 1.2Q", arguments: ["best", out, "--budget", "1.2Q"], status: 2, patterns: ["--budget '1.2Q'"]),
            Case(name: "best without --budget", arguments: ["best", out], status: 2, patterns: ["missing expected argument '--budget"]),
            Case(name: "front without folder", arguments: ["front"], status: 2, patterns: ["missing expected argument"]),
            Case(name: "threads not a number", arguments: ["search", space, "--output", out, "--threads", "two"], status: 2, patterns: ["'two'"]),
            Case(name: "front of a missing folder", arguments: ["front", path("nowhere")], status: 2, patterns: ["nowhere: no such results folder"]),
            Case(name: "front of a folder without a log", arguments: ["front", out], status: 1, patterns: ["no log.h5"]),
            Case(name: "train --mask TTX", arguments: ["train", "--mask", "TTX"], status: 2, patterns: ["--mask 'TTX'"]),
            Case(name: "train --mask of the wrong length", arguments: ["train", "--mask", "TT", "--units", "linear:8,linear:8,linear:8"], status: 2,
                 patterns: ["--mask 'TT'"]),
            Case(name: "train --init missing", arguments: ["train", "--init", path("none.h5")], status: 2, patterns: ["none.h5"]),
            Case(name: "train --batch-size beyond the data", arguments: ["train", "--batch-size", "600", "--steps", "1"], status: 2,
                 patterns: ["--batch-size 600 is larger than each task's training set of 512 examples"]),
            Case(name: "YAML syntax", arguments: ["search", bad, "--output", out], status: 2, patterns: ["bad.yaml:11: (file): not valid YAML"],
                 absent: ["bad.yaml:?"]),
            Case(name: "YAML tab", arguments: ["search", tab, "--output", out], status: 2, patterns: ["tab.yaml:8: (file): not valid YAML"]),
            Case(name: "data describe YAML syntax", arguments: ["data", "describe", bad], status: 2, patterns: ["bad.yaml:11: (file): not valid YAML"]),
            Case(name: "data describe missing", arguments: ["data", "describe", path("missing.yaml")], status: 2, patterns: ["missing.yaml"]),
            Case(name: "--stage without --shard", arguments: ["search", space, "--output", out, "--stage", "1"], status: 2,
                 patterns: ["--stage only applies to a shard"]),
            Case(name: "--force with --shard", arguments: ["search", space, "--output", out, "--shard", "0/2", "--force"], status: 2,
                 patterns: ["--force cannot be used with --shard"]),
            Case(name: "merge --shards 0", arguments: ["merge", out, "--shards", "0"], status: 2, patterns: ["--shards must be at least 1"]),
            Case(name: "unwritable output", arguments: ["search", space, "--output", readOnly, "--quiet"], status: 1,
                 patterns: ["error: \(readOnly): cannot create the results folder"]),
            Case(name: "unwritable Slurm folder", arguments: ["slurm", space, "--tasks", "2", "--output", "/sys/layersplit-test-\(getpid())"], status: 1,
                 patterns: ["error: /sys/layersplit-test-\(getpid())"]),
        ]
        try check(cases, output: out)
    }

    /// `front` and `best` on a folder with only shard logs say to merge them.
    func testFrontOfShardLogsOnlySaysToMerge() throws {
        let space = try write(spaceText())
        let out = path("sharded")
        let r = try layersplit("search", space, "--output", out, "--shard", "0/2", "--quiet")
        XCTAssertEqual(r.status, 0, r.stderr)
        let before = snapshot(out)
        try check([Case(name: "front", arguments: ["front", out], status: 1, patterns: ["only shard logs so far", "layersplit merge \(out)"]),
                   Case(name: "best", arguments: ["best", out, "--budget", "+25%"], status: 1, patterns: ["layersplit merge \(out)"])],
                  output: out)
        XCTAssertEqual(snapshot(out), before)
    }

    /// By hand, without --stage, a greedy shard that finished a round last goes on into the next one while the
    /// other stopped: merge says the stage is next for the stopped shard (exit 3), not that a shard failed.
    func testMergeOfShardsThatRanAheadPlansTheNextStage() throws {
        let space = try write(spaceText([("strategy: exhaustive", "strategy: greedy"), ("[linear:8, linear:8]", "[linear:8, linear:8, linear:8]")]))
        let out = path("greedy")
        // Shard 0 trains its share of round 1 and stops (shard 1's share is missing); shard 1 then finds round 1
        // complete and goes on into round 2.
        for shard in ["0/2", "1/2"] {
            let r = try layersplit("search", space, "--output", out, "--shard", shard, "--quiet")
            XCTAssertEqual(r.status, 0, "\(shard): \(r.stderr)")
        }
        let merged = try layersplit("merge", out)
        XCTAssertEqual(merged.status, 3, merged.text)
        XCTAssertTrue(merged.stdout.contains("is next for shards 0 of 2") && merged.stdout.contains("nothing failed"), merged.text)
        XCTAssertFalse(merged.text.contains("killed or failed"), merged.text)
        // Running what it names and merging again gets on with the search.
        let again = try layersplit("search", space, "--output", out, "--shard", "0/2", "--quiet")
        XCTAssertEqual(again.status, 0, again.stderr)
    }

    // MARK: - Silent data mistakes

    /// A batch larger than a task's training split is refused with the task and its size, at the line of
    /// `batch_size` (training's, and pretraining's when it has its own).
    func testBatchLargerThanTheTrainingSplitIsRefused() throws {
        let out = try preparedOutput()
        let training = try write(spaceText([("batch_size: 4", "batch_size: 30")]), "training.yaml")
        let pretrain = try write(spaceText(extra: "pretrain: {steps: 2,\n  batch_size: 25}\n"), "pretrain.yaml")
        try check([
            Case(name: "training", arguments: ["search", training, "--output", out, "--quiet"], status: 2,
                 patterns: ["training.yaml:8: training.batch_size: 30 is larger than task", "training split of 24 examples; use at most 24"]),
            Case(name: "pretrain", arguments: ["search", pretrain, "--output", out, "--quiet"], status: 2,
                 patterns: ["pretrain.yaml:11: pretrain.batch_size: 25 is larger than task"]),
        ], output: out)
    }

    /// An `--init` file with a head stored transposed is an error naming the key and both shapes; a head for
    /// another class count is skipped with one warning line naming it.
    func testInitHeadsOfTheWrongShape() throws {
        let units = "linear:8,linear:8"
        let weights = path("w.h5")
        let made = try layersplit("pretrain", "--units", units, "--tasks", "2", "--steps", "2", "--quiet", "--output", weights)
        XCTAssertEqual(made.status, 0, made.text)
        // Replace task 1's head weight by its transpose, and task 0's by one for 5 classes.
        let file = try HDF5File(opening: weights, mode: .readWrite)
        let heads = try file.datasetPaths(under: "/weights").filter { $0.contains("head/") && $0.hasSuffix("/weight") }.sorted()
        XCTAssertEqual(heads.count, 2, "\(heads)")
        let shape = try file.info(of: heads[1]).shape
        try file.delete(heads[1])
        try file.write([Float](repeating: 0.1, count: shape[0] * shape[1]), shape: [shape[1], shape[0]], to: heads[1])
        try file.close()
        let r = try layersplit("train", "--units", units, "--tasks", "2", "--steps", "2", "--quiet", "--mask", "TS", "--init", weights)
        XCTAssertEqual(r.status, 1, r.text)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("\(heads[1]): shape [\(shape[1]), \(shape[0])] but the model expects \(shape)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("transposed"), r.stderr)

        let other = try HDF5File(opening: weights, mode: .readWrite)
        try other.delete(heads[1])
        try other.write([Float](repeating: 0.1, count: 5 * shape[1]), shape: [5, shape[1]], to: heads[1])
        let bias = String(heads[1].dropLast("weight".count)) + "bias"
        try other.delete(bias)
        try other.write([Float](repeating: 0, count: 5), shape: [5], to: bias)
        try other.close()
        let warned = try layersplit("train", "--units", units, "--tasks", "2", "--steps", "2", "--quiet", "--mask", "TS", "--init", weights)
        XCTAssertEqual(warned.status, 0, warned.text)
        let warnings = warned.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
        XCTAssertEqual(warnings.count, 1, warned.stderr)
        XCTAssertTrue(warnings.first?.contains("\(heads[1]): shape [5, \(shape[1])]") ?? false, warned.stderr)
        XCTAssertTrue(warnings.first?.contains("5 classes in the file") ?? false, warned.stderr)
    }

    /// A 4-D HDF5 input stored NCHW is read as NCHW ([N, 1, 6, 5] gives 6 x 5 x 1 examples); a shape that does
    /// not say needs `layout:`.
    func testNCHWInputsAreDetectedOrMustBeDeclared() throws {
        let h5 = path("images.h5")
        let file = try HDF5File(creating: h5, overwrite: true)
        try file.write((0..<(40 * 30)).map { UInt8($0 % 256) }, shape: [40, 1, 6, 5], to: "/nchw")
        try file.write((0..<(40 * 4 * 5 * 6)).map { UInt8($0 % 256) }, shape: [40, 4, 5, 6], to: "/either")
        try file.write((0..<40).map { Int64($0 % 2) }, to: "/y")
        try file.write([Float](repeating: 0, count: 40 * 30), shape: [40, 30], to: "/flat")
        try file.close()
        func spaceFor(_ source: String) -> String {
            spaceText([("synthetic: {kind: multi-domain, tasks: 2, classes: 3, features: 8, train: 24, test: 24}",
                        "tasks:\n    - {name: a, source: \(source)}")])
        }
        let detected = try layersplit("data", "describe", try write(spaceFor("{hdf5: images.h5, x: /nchw}"), "nchw.yaml"))
        XCTAssertEqual(detected.status, 0, detected.text)
        XCTAssertTrue(detected.text.contains("6 x 5 x 1"), detected.text)
        let declared = try layersplit("data", "describe", try write(spaceFor("{hdf5: images.h5, x: /either, layout: nchw}"), "declared.yaml"))
        XCTAssertEqual(declared.status, 0, declared.text)
        XCTAssertTrue(declared.text.contains("5 x 6 x 4"), declared.text)
        let out = try preparedOutput()
        try check([
            Case(name: "ambiguous", arguments: ["data", "describe", try write(spaceFor("{hdf5: images.h5, x: /either}"), "ambiguous.yaml")], status: 2,
                 patterns: ["ambiguous.yaml:6: data.tasks[0].source", "[40, 4, 5, 6]", "layout: nchw"]),
            Case(name: "unknown layout", arguments: ["data", "describe", try write(spaceFor("{hdf5: images.h5, x: /nchw, layout: chw}"), "unknown.yaml")],
                 status: 2, patterns: ["source.layout", "unknown layout 'chw'"]),
            Case(name: "layout of 2-D data", arguments: ["data", "describe", try write(spaceFor("{hdf5: images.h5, x: /flat, layout: nhwc}"), "flat.yaml")],
                 status: 2, patterns: ["'layout: nhwc' is for 4-dimensional"]),
        ], output: out)
    }

    // MARK: - Signals

    /// SIGTERM (and SIGINT) during a search: the trial in progress is dropped, one line says what is saved and
    /// how to continue, the exit status is 143 (130), the log holds every finished trial, and rerunning the
    /// same command continues without retraining them.
    func testSignalsStopASearchCleanlyAndARerunContinues() throws {
        // 2 masks x 3 seeds of a few thousand tiny steps: each trial takes a fraction of a second.
        let space = try write(spaceText([("steps: 4, batch_size: 4, eval_every: 2", "steps: 60000, batch_size: 4, eval_every: 20000"),
                                         ("[linear:8, linear:8]", "[linear:8]"), ("seeds: 1", "seeds: 3")]))
        for (sig, status, name) in [(SIGTERM, Int32(143), "SIGTERM"), (SIGINT, Int32(130), "SIGINT")] {
            let out = path("run-\(name)")
            let started = try ProcessRunner.start(try binary(), ["search", space, "--output", out, "--quiet"])
            let deadline = Date().addingTimeInterval(30)
            var logged = 0
            while Date() < deadline {
                logged = (try? RunLog.open(at: out + "/log.h5").trialsInOrder.count) ?? 0
                if logged >= 1 { break }
                usleep(10_000)
            }
            kill(started.process.processIdentifier, sig)
            let r = ProcessRunner.finish(started)
            XCTAssertEqual(r.status, status, "\(name): \(r.text)")
            XCTAssertEqual(started.process.terminationReason, .exit, "\(name): it exits, it is not killed by the signal")
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, r.stderr)
            let saved = try RunLog.open(at: out + "/log.h5").trialsInOrder
            XCTAssertGreaterThanOrEqual(saved.count, 1)
            XCTAssertLessThan(saved.count, 6, "\(name): stopped before the end")
            XCTAssertTrue(saved.allSatisfy { $0.state == .done && $0.stepsTrained == 60000 }, "\(name): only whole trials")
            XCTAssertTrue(r.stderr.hasPrefix("stopped by \(name): \(saved.count) finished trial"), r.stderr)
            XCTAssertTrue(r.stderr.contains("\(out)/log.h5") && r.stderr.contains("rerun the same command to continue"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/summary.md"), "no reports of a half-done search")
            if sig == SIGTERM {
                let again = try layersplit("search", space, "--output", out)
                XCTAssertEqual(again.status, 0, again.stderr)
                XCTAssertEqual(again.stderr.components(separatedBy: "already in the log, not retrained").count - 1, saved.count, again.stderr)
                let all = try RunLog.open(at: out + "/log.h5").trialsInOrder
                XCTAssertEqual(all.count, 6)
                XCTAssertEqual(all.prefix(saved.count).map(\.key), saved.map(\.key), "the log opens with the trials saved before")
            }
        }
    }
}
