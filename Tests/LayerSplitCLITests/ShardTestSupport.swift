import Foundation
import XCTest

/// What the sharding and Slurm tests share: the built binary, processes, small search spaces, and the
/// comparison of a merged run with a single-process one.
enum ShardTestSupport {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var text: String { stdout + stderr }
    }

    /// The repository's root (for scripts/).
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The release binary next to the test bundle, or `LAYERSPLIT_BIN`.
    static func binary() throws -> URL {
        if let env = ProcessInfo.processInfo.environment["LAYERSPLIT_BIN"] { return URL(fileURLWithPath: env) }
        let exe = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        var folder = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("layersplit")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        let fallback = root.appendingPathComponent(".build/release/layersplit")
        guard FileManager.default.isExecutableFile(atPath: fallback.path) else {
            throw XCTSkip("the layersplit binary is not built (swift build -c release); set LAYERSPLIT_BIN to its path")
        }
        return fallback
    }

    /// Starts `executable`; the caller waits with `finish`.
    static func start(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws -> (Process, Pipe, Pipe) {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        return (p, out, err)
    }

    static func finish(_ started: (Process, Pipe, Pipe)) -> Result {
        let (p, out, err) = started
        // Read both pipes concurrently so that neither fills up and blocks the child.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }

    static func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        finish(try start(executable, arguments, environment: environment))
    }

    static func layersplit(_ arguments: String..., environment: [String: String]? = nil) throws -> Result {
        try run(try binary(), arguments, environment: environment)
    }

    /// A small, fast search space over the built-in synthetic suite (no files).
    static func space(study: String, strategy: String, units: Int = 3, steps: Int = 60, seeds: Int = 2,
                      evalEvery: Int = 30, budget: String = "none") -> String {
        """
        study: \(study)
        model:
          units: [\(Array(repeating: "linear:32", count: units).joined(separator: ", "))]
        data:
          synthetic: {kind: multi-domain, tasks: 3, classes: 10, features: 32, train: 256, test: 256}
          validation: 0.25
        states: [S, T]
        budget: \(budget)
        strategy: \(strategy)
        training: {steps: \(steps), batch_size: 16, optimizer: sgd, lr: 0.05, momentum: 0.9, schedule: cosine, eval_every: \(evalEvery)}
        pretrain: {steps: 60}
        evaluation: test
        seeds: \(seeds)

        """
    }

    /// A CSV report without its `seconds` column: what must be equal between a merged and a single run.
    static func withoutSeconds(_ path: String) throws -> [String] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false),
              let column = header.firstIndex(of: "seconds") else {
            XCTFail("\(path): no 'seconds' column")
            return lines
        }
        return lines.map { line in
            var fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if fields.count > column { fields.remove(at: column) }
            return fields.joined(separator: ",")
        }
    }

    /// Checks that `merged`'s reports equal `single`'s bit for bit, timings apart.
    static func assertSameResult(_ merged: String, _ single: String, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for name in ["candidates.csv", "front.csv"] {
            let a = try withoutSeconds(single + "/" + name), b = try withoutSeconds(merged + "/" + name)
            XCTAssertGreaterThan(a.count, 1, "\(label): \(name) is empty", file: file, line: line)
            XCTAssertEqual(b, a, "\(label): \(name) differs from the single-process run", file: file, line: line)
        }
        XCTAssertEqual(try String(contentsOfFile: merged + "/front.json", encoding: .utf8),
                       try String(contentsOfFile: single + "/front.json", encoding: .utf8), "\(label): front.json", file: file, line: line)
    }

    /// A fresh folder under /tmp that everyone can traverse (munged insists on that for its socket).
    static func makeFolder(_ prefix: String) throws -> String {
        let path = "/tmp/\(prefix)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        return path
    }
}
