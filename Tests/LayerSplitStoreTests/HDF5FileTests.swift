import Foundation
import LayerSplitEngine
import XCTest
@testable import LayerSplitStore

final class HDF5FileTests: StoreTestCase {
    func testDatasetsRoundTripWithShapesAndTypes() throws {
        let p = path("a.h5")
        do {
            let f = try HDF5File(creating: p)
            let big = (0..<5000).map { Float($0) * 0.5 }
            try f.write(big, shape: [50, 100], to: "/x/big")                  // chunked + gzip (automatic)
            try f.write([1, 2, 3, 4, 5, 6] as [UInt8], shape: [2, 3], to: "/bytes")
            try f.write([-1, 1 << 40, 7] as [Int64], to: "/labels")
            try f.write([2.5] as [Double], shape: [], to: "/scalar")
            try f.write([] as [Float], shape: [0, 4], to: "/empty")
            XCTAssertEqual(f.openObjectCount, 1)
            try f.close()
        }
        let f = try HDF5File(opening: p)
        defer { try? f.close() }
        let big = try f.readFloats("/x/big")
        XCTAssertEqual(big.shape, [50, 100])
        XCTAssertEqual(big.values[4999], 2499.5)
        let info = try f.info(of: "/x/big")
        XCTAssertEqual(info.elementType, .float32)
        XCTAssertNotNil(info.chunks)
        XCTAssertEqual(info.gzipLevel, 4)
        XCTAssertEqual(try f.readUInt8("/bytes"), HDF5Array(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
        XCTAssertEqual(try f.readInt64("/labels").values, [-1, 1 << 40, 7])
        XCTAssertEqual(try f.read(Double.self, "/scalar"), HDF5Array(shape: [], values: [2.5]))
        XCTAssertEqual(try f.readFloats("/empty").shape, [0, 4])
        // Integers convert to floats and to other integer types; rows read a slice.
        XCTAssertEqual(try f.readFloats("/bytes").values, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try f.read(Int32.self, "/bytes", rows: 1..<2), HDF5Array(shape: [1, 3], values: [4, 5, 6]))
        XCTAssertEqual(try f.readFloats("/x/big", rows: 49..<50).values.first, 2450)
        XCTAssertEqual(try f.readTensor("/x/big").shape, [50, 100])
        XCTAssertEqual(try f.children(), ["bytes", "empty", "labels", "scalar", "x"])
        XCTAssertEqual(try f.datasetPaths(), ["/bytes", "/empty", "/labels", "/scalar", "/x/big"])
        XCTAssertEqual(try f.objectKind("/x"), .group)
        XCTAssertTrue(f.exists("/x/big"))
        XCTAssertFalse(f.exists("/x/nothing/deeper"))
        XCTAssertEqual(f.openObjectCount, 1)
    }

    func testAttributes() throws {
        let p = path("attrs.h5")
        let f = try HDF5File(creating: p)
        try f.createGroup("/g/h")
        try f.setAttribute("text", "héllo, wörld — UTF-8", on: "/g/h")
        try f.setAttribute("text", "replaced ✓", on: "/g/h")
        try f.setAttribute("seed", UInt64.max)
        try f.setAttribute("count", Int64(-3))
        try f.setAttribute("shape", values: [32, 3, 3, 1] as [Int64])
        try f.setAttribute("rate", 0.25)
        try f.close()

        let r = try HDF5File(opening: p)
        defer { try? r.close() }
        XCTAssertEqual(try r.stringAttribute("text", of: "/g/h"), "replaced ✓")
        XCTAssertNil(try r.stringAttribute("absent", of: "/g/h"))
        XCTAssertEqual(try r.attribute(UInt64.self, "seed"), .max)
        XCTAssertEqual(try r.attribute(Int64.self, "count"), -3)
        XCTAssertEqual(try r.attributeValues(Int64.self, "shape"), [32, 3, 3, 1])
        XCTAssertEqual(try r.attribute(Double.self, "rate"), 0.25)
        XCTAssertEqual(try r.attributeNames(), ["count", "rate", "seed", "shape"])
        XCTAssertEqual(try r.attributeText("shape"), "[32, 3, 3, 1]")
        assertStoreError(.typeMismatch, object: "/@rate", try r.stringAttribute("rate"))
        assertStoreError(.typeMismatch, object: "/g/h@text", try r.attribute(Int64.self, "text", of: "/g/h"))
    }

    func testExtensibleDatasetsGrow() throws {
        let p = path("ext.h5")
        let f = try HDF5File(creating: p)
        try f.createExtensible(Double.self, at: "/c/acc", rowShape: [3], chunkRows: 4)
        try f.append([0.1, 0.2, 0.3], to: "/c/acc")
        try f.append([0.4, 0.5, 0.6, 0.7, 0.8, 0.9], to: "/c/acc")
        assertStoreError(.shapeMismatch, object: "/c/acc", try f.append([1.0], to: "/c/acc"))
        try f.write([1] as [Float], to: "/fixed")
        assertStoreError(.wrongKind, object: "/fixed", try f.append([2] as [Float], to: "/fixed"))
        try f.close()
        let r = try HDF5File(opening: p)
        defer { try? r.close() }
        let acc = try r.read(Double.self, "/c/acc")
        XCTAssertEqual(acc.shape, [3, 3])
        XCTAssertEqual(acc.values.last, 0.9)
        XCTAssertEqual(try r.info(of: "/c/acc").maxShape, [nil, 3])
    }

    func testErrorsNameFileAndObject() throws {
        let p = path("e.h5")
        let f = try HDF5File(creating: p)
        try f.write([1.5, 2.5] as [Float], to: "/w")
        try f.createGroup("/grp")
        assertStoreError(.exists, object: "/w", try f.write([1] as [Float], to: "/w"))
        try f.close()

        let r = try HDF5File(opening: p)
        defer { try? r.close() }
        let e = assertStoreError(.missing, object: "/nope/x", try r.readFloats("/nope/x"))
        XCTAssertEqual(e?.file, p)
        assertStoreError(.wrongKind, object: "/grp", try r.readFloats("/grp"))
        assertStoreError(.typeMismatch, object: "/w", try r.readInt64("/w"))
        assertStoreError(.shapeMismatch, object: "/w", try r.readFloats("/w", rows: 1..<3))
        assertStoreError(.invalidArgument, object: "/x", try r.write([1] as [Float], to: "/x"))
        assertStoreError(.fileNotFound, object: nil, try HDF5File(opening: path("missing.h5")))
        try Data("just text, not HDF5\n".utf8).write(to: folder.appendingPathComponent("text.h5"))
        assertStoreError(.notHDF5, object: nil, try HDF5File(opening: path("text.h5")))
        XCTAssertFalse(HDF5File.isHDF5(path("text.h5")))
        XCTAssertTrue(HDF5File.isHDF5(p))
    }

    func testTruncatedFileIsCorrupt() throws {
        let p = path("t.h5")
        let f = try HDF5File(creating: p)
        try f.write((0..<20000).map(Float.init), shape: [200, 100], to: "/data/x", storage: .contiguous)
        try f.setAttribute("note", "x")
        try f.close()
        // Keep the superblock (so it still looks like HDF5) but lose the rest.
        let data = try Data(contentsOf: URL(fileURLWithPath: p))
        try data.prefix(1200).write(to: URL(fileURLWithPath: p))
        do {
            let r = try HDF5File(opening: p)
            defer { try? r.close() }
            _ = try r.readFloats("/data/x")
            XCTFail("a truncated file must not read")
        } catch let e as StoreError {
            XCTAssertEqual(e.kind, .corrupt, "\(e)")
            XCTAssertTrue(e.description.hasPrefix(p), "\(e)")
        }
    }
}
