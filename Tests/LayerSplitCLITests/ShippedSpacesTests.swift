import Foundation
import LayerSplitRun
import XCTest

/// The search spaces the project ships (`search-spaces/*.yaml`, `search-spaces/papers/*.yaml`) stay valid as
/// the code changes: each parses, its data loads and its masks fit its budget. Nothing is trained.
final class ShippedSpacesTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testEveryShippedSearchSpaceLoadsWithItsData() throws {
        let shared = Self.root.appendingPathComponent("../shared/data").standardizedFileURL.path
        for needed in [shared, "/usr/share/datasets/fashion-mnist"] where !FileManager.default.fileExists(atPath: needed) {
            throw XCTSkip("\(needed) is missing (make setup installs Fashion-MNIST; ../shared holds the digits)")
        }
        var files: [String] = []
        for sub in ["search-spaces", "search-spaces/papers"] {
            let folder = Self.root.appendingPathComponent(sub).path
            files += try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }
                .sorted().map { folder + "/" + $0 }
        }
        XCTAssertGreaterThanOrEqual(files.count, 10)
        for file in files {
            let space = try SearchSpace.load(file)
            let run = try StudyRun(space: space)
            XCTAssertFalse(run.domain.allMasks.isEmpty, file)
            XCTAssertTrue(space.seeds.count >= (file.contains("/papers/") ? 5 : 1), "\(file): the papers' studies pair at least 5 seeds")
        }
    }
}
