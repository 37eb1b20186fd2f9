import Foundation
import XCTest
@testable import LayerSplitStore

/// A fresh temporary folder per test, removed afterwards.
class StoreTestCase: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("layersplit-store-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        // Every HDF5 identifier must have been closed, on success and error paths alike.
        XCTAssertEqual(HDF5File.openObjectCountAllFiles, 0, "HDF5 identifiers left open")
        try? FileManager.default.removeItem(at: folder)
    }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    /// Asserts that `body` throws a StoreError of `kind` whose message names `object`, and returns it.
    @discardableResult
    func assertStoreError<T>(_ kind: StoreError.Kind, object: String?, _ body: @autoclosure () throws -> T,
                             file: StaticString = #filePath, line: UInt = #line) -> StoreError? {
        do {
            _ = try body()
            XCTFail("expected a \(kind) error", file: file, line: line)
            return nil
        } catch let error as StoreError {
            XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
            if let object {
                XCTAssertEqual(error.object, object, "\(error)", file: file, line: line)
                XCTAssertTrue(error.description.contains(object), "\(error)", file: file, line: line)
            }
            XCTAssertFalse(error.description.contains("\n"), "one line: \(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("expected a StoreError, got \(error)", file: file, line: line)
            return nil
        }
    }
}
