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

    typealias Result = ProcessResult

    func run(_ executable: URL, _ arguments: [String]) throws -> Result { try ProcessRunner.run(executable, arguments) }

    func layersplit(_ arguments: String...) throws -> Result { try run(try binary(), arguments) }

    /// The built `layersplit` (`LayersplitBinary.url()`).
    func binary() throws -> URL { try LayersplitBinary.url() }
}
