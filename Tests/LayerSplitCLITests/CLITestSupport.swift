import Foundation
import XCTest

/// Runs the built `layersplit` binary in a fresh temporary folder per test: the base of the end-to-end tests.
class CLITestCase: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("layersplit-cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    func run(_ executable: URL, _ arguments: [String]) throws -> Result {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    func layersplit(_ arguments: String...) throws -> Result { try run(try binary(), arguments) }

    /// The release binary next to the test bundle, or `LAYERSPLIT_BIN`.
    func binary() throws -> URL {
        if let env = ProcessInfo.processInfo.environment["LAYERSPLIT_BIN"] { return URL(fileURLWithPath: env) }
        let exe = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        var folder = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("layersplit")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        let fallback = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/release/layersplit")
        guard FileManager.default.isExecutableFile(atPath: fallback.path) else {
            throw XCTSkip("the layersplit binary is not built (swift build -c release); set LAYERSPLIT_BIN to its path")
        }
        return fallback
    }
}
