import LayerSplitEngine
import XCTest

/// `ParameterKey`: its text is a file-format contract (dataset paths under `/weights`), so every key a model
/// produces must read back to itself, the text must be exactly the historical strings, and anything else must
/// be refused with a message saying why.
final class ParameterKeyTests: XCTestCase {
    /// A linear unit reading an image, a conv unit and a residual unit, three tasks: every key kind.
    let spec = ModelSpec(inputShape: [6, 6, 2], units: [.conv(3), .residual(4, stride: 2), .linear(5, adapterRank: 2)],
                         taskClasses: [2, 3, 2])
    /// Linear units on vectors.
    let mlp = ModelSpec(inputShape: [5], units: [.linear(4, adapterRank: 2), .linear(3)], taskClasses: [2, 2])

    private func allMasks(units: Int) -> [SharingMask] {
        var masks: [[SharingState]] = [[]]
        for _ in 0..<units { masks = masks.flatMap { m in [SharingState.shared, .specific, .adapter].map { m + [$0] } } }
        return masks.map(SharingMask.init)
    }

    // MARK: - Round trip

    func testEveryKeyOfEveryMaskReadsBackToItself() throws {
        var seen: Set<String> = []
        for spec in [spec, mlp] {
            for mask in allMasks(units: spec.units.count) {
                var rng = SplitMix64(seed: 1)
                let model = try MultiTaskModel(spec: spec, mask: mask, rng: &rng)
                let keys = model.keyedParameters.map(\.key) + model.keyedBuffers.map(\.key)
                XCTAssertEqual(model.namedParameters.map(\.name), model.keyedParameters.map(\.key.description), "\(mask)")
                XCTAssertEqual(model.namedBuffers.map(\.name), model.keyedBuffers.map(\.key.description), "\(mask)")
                XCTAssertEqual(Set(keys).count, keys.count, "\(spec) \(mask): keys are unique")
                for key in keys {
                    let text = key.description
                    XCTAssertEqual(try ParameterKey(parsing: text), key, text)
                    XCTAssertEqual(try ParameterKey(parsing: text).description, text)
                    seen.insert(text)
                }
            }
        }
        // The historical strings, one of each kind (docs/FORMATS.md).
        for text in ["u01/conv.weight", "u01/bn.running_mean", "u01/t2/conv.weight", "u01/t1/adapter.weight",
                     "u01/t0/bn.running_var", "u02/block0.conv1.weight", "u02/block0.shortcut.conv.weight",
                     "u02/t1/block0.bn1.weight", "u02/t2/block0.adapter1.weight", "u02/t0/block0.shortcut.bn.running_mean",
                     "u03/fc.weight", "u03/t2/fc.bias", "u03/t1/adapter.U", "u03/t1/adapter.V",
                     "head/t0/weight", "head/t2/bias"] {
            XCTAssertTrue(seen.contains(text), "no model produced \(text)")
        }
        XCTAssertTrue(seen.contains("u01/fc.weight") && seen.contains("u01/t1/adapter.V"))
    }

    func testTextOfEachKind() throws {
        XCTAssertEqual(ParameterKey(unit: 0, name: "fc.weight").description, "u01/fc.weight")
        XCTAssertEqual(ParameterKey(unit: 0, task: 2, name: "fc.weight").description, "u01/t2/fc.weight")
        XCTAssertEqual(ParameterKey(unit: 1, task: 1, name: "adapter.U").description, "u02/t1/adapter.U")
        XCTAssertEqual(ParameterKey(unit: 2, name: "block0.conv1.weight").description, "u03/block0.conv1.weight")
        XCTAssertEqual(ParameterKey(head: 2, name: "weight").description, "head/t2/weight")
        XCTAssertEqual(ParameterKey(unit: 9, name: "fc.bias").description, "u10/fc.bias")
        XCTAssertEqual(ParameterKey(unit: 122, task: 11, name: "fc.bias").description, "u123/t11/fc.bias")
        for text in ["u10/fc.bias", "u123/t11/fc.bias", "u09/t0/bn.weight"] {
            XCTAssertEqual(try ParameterKey(parsing: text).description, text)
        }

        let adapter = try ParameterKey(parsing: "u02/t1/adapter.U")
        XCTAssertEqual(adapter.unit, 1)
        XCTAssertEqual(adapter.task, 1)
        XCTAssertEqual(adapter.name, "adapter.U")
        XCTAssertFalse(adapter.isHead)
        let head = try ParameterKey(parsing: "head/t2/weight")
        XCTAssertEqual(head.owner, .head)
        XCTAssertNil(head.unit)
        XCTAssertEqual(head.task, 2)
        XCTAssertTrue(head.isHead)
    }

    func testSharedKeyDropsTheTask() throws {
        XCTAssertEqual(try ParameterKey(parsing: "u02/t1/fc.weight").sharedKey?.description, "u02/fc.weight")
        XCTAssertEqual(try ParameterKey(parsing: "u03/t0/block0.bn1.running_mean").sharedKey?.description, "u03/block0.bn1.running_mean")
        XCTAssertNil(try ParameterKey(parsing: "u02/fc.weight").sharedKey)
        XCTAssertNil(try ParameterKey(parsing: "head/t1/weight").sharedKey)
    }

    // MARK: - Malformed keys

    func testMalformedKeysAreRefusedSayingWhy() {
        let malformed = [
            "", "fc.weight", "u01", "u01/", "/u01/fc.weight", "u01/fc.weight/", "u01//fc.weight", "u01/t1/fc/weight",
            "u1/fc.weight", "u001/fc.weight", "u00/fc.weight", "U01/fc.weight", "uxx/fc.weight", "u-1/fc.weight",
            "u١٢/fc.weight", "x01/fc.weight", "heads/t0/weight",
            "u01/t01/fc.weight", "u01/t/fc.weight", "u01/x1/fc.weight", "u01/t-1/fc.weight", "u01/T1/fc.weight",
            "u01/t1", "u01/t1/", "head/weight", "head/t0", "head/t0/", "head/u01/weight",
            "u01/fc..weight", "u01/.weight", "u01/fc.", "u01/fc weight", "u01/fc.wéight",
        ]
        for text in malformed {
            XCTAssertThrowsError(try ParameterKey(parsing: text), "'\(text)' must be refused") { error in
                guard case let EngineError.invalidParameterKey(key, why) = error else {
                    return XCTFail("'\(text)': \(error)")
                }
                XCTAssertEqual(key, text)
                XCTAssertFalse(why.isEmpty)
                let message = (error as! EngineError).description
                XCTAssertFalse(message.contains("\n"), message)
                XCTAssertTrue(message.contains("'\(text)'"), message)
            }
        }
    }

    // MARK: - Loading heads

    /// `loadBackbone` takes heads only when given, and a head given with another shape (transposed here) is an
    /// error naming the key and both shapes, not skipped silently.
    func testLoadBackboneRefusesAHeadOfTheWrongShape() throws {
        let spec = ModelSpec(inputShape: [4], units: [.linear(5)], taskClasses: [3, 2])
        var rng = SplitMix64(seed: 5)
        let source = try MultiTaskModel(spec: spec, mask: .all(.shared, units: 1), rng: &rng)
        let model = try MultiTaskModel(spec: spec, mask: .all(.shared, units: 1), rng: &rng)
        var weights = Dictionary(uniqueKeysWithValues: source.namedParameters.map { ($0.name, $0.parameter.value) })

        // Absent heads keep their values.
        let heads = weights.filter { $0.key.hasPrefix("head/") }
        for key in heads.keys { weights[key] = nil }
        let before = model.namedParameters.filter { $0.name.hasPrefix("head/") }.map(\.parameter.value.values)
        try model.loadBackbone(weights)
        XCTAssertEqual(model.namedParameters.filter { $0.name.hasPrefix("head/") }.map(\.parameter.value.values), before)

        // Present heads of the right shape are taken.
        weights.merge(heads) { a, _ in a }
        try model.loadBackbone(weights)
        XCTAssertEqual(model.namedParameters.map(\.parameter.value.values), source.namedParameters.map(\.parameter.value.values))

        // A transposed head is an error naming the key and both shapes.
        let w = try XCTUnwrap(weights["head/t1/weight"])
        XCTAssertEqual(w.shape, [2, 5])
        weights["head/t1/weight"] = Tensor(zeros: [5, 2])
        XCTAssertThrowsError(try model.loadBackbone(weights)) { error in
            XCTAssertEqual(error as? EngineError, .weightMismatch(key: "head/t1/weight", expected: [2, 5], got: [5, 2]))
            XCTAssertEqual("\(error)", "weights for 'head/t1/weight' have shape [5, 2] but the model expects [2, 5]")
        }
    }
}
