import Foundation
import XCTest

/// Where the built `layersplit` executable is, for the tests that run it as a separate process (end-to-end
/// CLI tests, sharding, kill tests). One place, so that every suite finds the same binary the same way.
public enum LayersplitBinary {
    /// `LAYERSPLIT_BIN` when set; else the `layersplit` next to the test bundle (SwiftPM puts both in
    /// `.build/<configuration>/`, up to a few folders above the test executable); else the repository's
    /// `.build/release/layersplit`. Throws `XCTSkip` when none exists, because the tests that need it say
    /// nothing about the code when the binary was not built.
    public static func url() throws -> URL {
        if let env = ProcessInfo.processInfo.environment["LAYERSPLIT_BIN"] { return URL(fileURLWithPath: env) }
        let exe = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        var folder = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("layersplit")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        let fallback = repositoryRoot.appendingPathComponent(".build/release/layersplit")
        guard FileManager.default.isExecutableFile(atPath: fallback.path) else {
            throw XCTSkip("the layersplit binary is not built (swift build -c release); set LAYERSPLIT_BIN to its path")
        }
        return fallback
    }

    /// The repository's root folder (this file is `Sources/_TestSupport/LayersplitBinary.swift`).
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}
