import Foundation
import XCTest
import _TestSupport

/// What the sharding and Slurm tests share: the built binary, processes, small search spaces, and the
/// comparison of a merged run with a single-process one.
enum ShardTestSupport {
    typealias Result = ProcessResult

    /// The repository's root (for scripts/).
    static var root: URL { LayersplitBinary.repositoryRoot }

    /// The built `layersplit` (`LayersplitBinary.url()`).
    static func binary() throws -> URL { try LayersplitBinary.url() }

    /// Starts `executable`; the caller waits with `finish`.
    static func start(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessRunner.Started {
        try ProcessRunner.start(executable, arguments, environment: environment)
    }

    static func finish(_ started: ProcessRunner.Started) -> Result { ProcessRunner.finish(started) }

    static func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        try ProcessRunner.run(executable, arguments, environment: environment)
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
