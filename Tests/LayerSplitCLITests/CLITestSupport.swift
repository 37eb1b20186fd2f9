import Foundation
import XCTest
import _TestSupport

/// Runs the built `layersplit` binary in a fresh temporary folder per test: the base of the end-to-end tests.
class CLITestCase: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("layersplit-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    /// The tiny synthetic study the end-to-end tests share (2 units of width 16, 2 tasks of 4 classes, an
    /// exhaustive search), written to `name`: `training` is appended inside the training map, `lines` after
    /// the seeds. Returns its path.
    func tinySpace(_ name: String = "tiny.yaml", steps: Int = 40, seeds: Int = 2, test: Int = 64,
                   pretrain: String = "{steps: 20}", training: String = "", lines: [String] = []) throws -> String {
        let text = """
        study: tiny
        model:
          units: [linear:16, linear:16]
        data:
          synthetic: {kind: multi-domain, tasks: 2, classes: 4, features: 16, train: 64, test: \(test)}
          validation: 0.25
        strategy: exhaustive
        training: {steps: \(steps), batch_size: 16, lr: 0.05, eval_every: 20\(training)}
        pretrain: \(pretrain)
        seeds: \(seeds)

        """ + lines.map { $0 + "\n" }.joined()
        let p = path(name)
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }


    typealias Result = ProcessResult

    func run(_ executable: URL, _ arguments: [String]) throws -> Result { try ProcessRunner.run(executable, arguments) }

    func layersplit(_ arguments: String...) throws -> Result { try run(try binary(), arguments) }

    /// The built `layersplit` (`LayersplitBinary.url()`).
    func binary() throws -> URL { try LayersplitBinary.url() }
}
