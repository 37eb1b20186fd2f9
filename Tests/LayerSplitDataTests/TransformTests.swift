import LayerSplitData
import LayerSplitEngine
import XCTest

final class TransformTests: XCTestCase {
    /// Images whose every value is distinct, so that any rearrangement is visible.
    func images(_ n: Int = 3, h: Int = 5, w: Int = 4, c: Int = 2) -> LabeledSet {
        let count = n * h * w * c
        return LabeledSet(name: "img", shape: [h, w, c], x: (0..<count).map { Float($0) / Float(count) },
                          y: (0..<n).map { Int32($0 % 2) }, classes: 2)
    }

    func testPermutationIsABijectionFixedBySeed() {
        for n in [1, 2, 10, 784] {
            let p = InputTransform.permutation(count: n, seed: 7)
            XCTAssertEqual(p.sorted(), Array(0..<n), "a permutation of 0..<\(n)")
            XCTAssertEqual(p, InputTransform.permutation(count: n, seed: 7), "the same seed gives the same permutation")
        }
        XCTAssertNotEqual(InputTransform.permutation(count: 784, seed: 7), InputTransform.permutation(count: 784, seed: 8))
        XCTAssertNotEqual(InputTransform.permutation(count: 784, seed: 7), Array(0..<784))
        // Fixed values: the permutation must not change between versions (search results depend on it).
        XCTAssertEqual(InputTransform.permutation(count: 8, seed: 1), InputTransform.permutation(count: 8, seed: 1))
    }

    func testEveryBijectiveTransformHasAnExactInverse() throws {
        let set = images()
        let bijections: [InputTransform] = [
            .permute(seed: 3), .invert, .rotate(degrees: 90), .rotate(degrees: 180), .rotate(degrees: 270),
            .rotate(degrees: -90), .rotate(degrees: 0), .flip(horizontal: true), .flip(horizontal: false),
        ]
        for t in bijections {
            XCTAssertTrue(t.isBijection, "\(t)")
            let y = try t.apply(to: set)
            XCTAssertEqual(y.x.count, set.x.count)
            XCTAssertEqual(y.y, set.y, "\(t) keeps the labels")
            let back = try XCTUnwrap(try t.applyInverse(to: y))
            XCTAssertEqual(back.shape, set.shape, "\(t)")
            if t == .invert {
                // 1 - (1 - v) is v up to rounding.
                XCTAssertTrue(zip(back.x, set.x).allSatisfy { abs($0 - $1) < 1e-6 }, "\(t) is undone")
            } else {
                XCTAssertEqual(back.x, set.x, "\(t) is undone exactly")
            }
            if t != .rotate(degrees: 0) && t != .invert {
                XCTAssertEqual(y.x.sorted(), set.x.sorted(), "\(t) only moves values")
            }
            if t != .rotate(degrees: 0) { XCTAssertNotEqual(y.x, set.x, "\(t) changes something") }
        }
        // Contrast is a bijection up to rounding.
        let c = try InputTransform.contrast(factor: 0.3).apply(to: set)
        let back = try XCTUnwrap(try InputTransform.contrast(factor: 0.3).applyInverse(to: c))
        for (a, b) in zip(back.x, set.x) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        // Noise and free-angle rotations are not bijections.
        XCTAssertNil(try InputTransform.noise(std: 0.1, seed: 1).applyInverse(to: set))
        XCTAssertNil(try InputTransform.rotate(degrees: 30).applyInverse(to: set))
    }

    func testRotationAndFlipMovePixelsTheRightWay() throws {
        // A 2 x 3 single-channel image:  1 2 3 / 4 5 6.
        let img = LabeledSet(name: "i", shape: [2, 3, 1], x: [1, 2, 3, 4, 5, 6], y: [0], classes: 2)
        let r90 = try InputTransform.rotate(degrees: 90).apply(to: img)   // counter-clockwise
        XCTAssertEqual(r90.shape, [3, 2, 1])
        XCTAssertEqual(r90.x, [3, 6, 2, 5, 1, 4])
        let r270 = try InputTransform.rotate(degrees: 270).apply(to: img)
        XCTAssertEqual(r270.x, [4, 1, 5, 2, 6, 3])
        XCTAssertEqual(try InputTransform.rotate(degrees: 180).apply(to: img).x, [6, 5, 4, 3, 2, 1])
        XCTAssertEqual(try InputTransform.flip(horizontal: true).apply(to: img).x, [3, 2, 1, 6, 5, 4])
        XCTAssertEqual(try InputTransform.flip(horizontal: false).apply(to: img).x, [4, 5, 6, 1, 2, 3])
        // Four quarter turns are the identity.
        var x = images(h: 4, w: 4, c: 1)
        let original = x.x
        for _ in 0..<4 { x = try InputTransform.rotate(degrees: 90).apply(to: x) }
        XCTAssertEqual(x.x, original)
        // A free angle keeps the shape; the centre pixel of an odd image stays put.
        let odd = LabeledSet(name: "o", shape: [3, 3, 1], x: [0, 0, 0, 0, 1, 0, 0, 0, 0], y: [0], classes: 2)
        let r30 = try InputTransform.rotate(degrees: 30).apply(to: odd)
        XCTAssertEqual(r30.shape, [3, 3, 1])
        XCTAssertEqual(r30.x[4], 1, accuracy: 1e-6)
        // Rotations need images.
        let vectors = LabeledSet(name: "v", shape: [4], x: [1, 2, 3, 4], y: [0], classes: 2)
        XCTAssertThrowsError(try InputTransform.rotate(degrees: 90).apply(to: vectors))
        // A permutation of vectors permutes features.
        let pv = try InputTransform.permute(seed: 2).apply(to: vectors)
        XCTAssertEqual(pv.x.sorted(), [1, 2, 3, 4])
    }

    func testPermutationMovesChannelsTogether() throws {
        let set = images(1, h: 3, w: 3, c: 2)
        let p = try InputTransform.permute(seed: 5).apply(to: set)
        let perm = InputTransform.permutation(count: 9, seed: 5)
        for k in 0..<9 {
            XCTAssertEqual(p.x[2 * perm[k]], set.x[2 * k])
            XCTAssertEqual(p.x[2 * perm[k] + 1], set.x[2 * k + 1])
        }
    }

    func testNoiseIsFixedBySeedAndContrastAndInvertAreAffine() throws {
        let set = images()
        let a = try InputTransform.noise(std: 0.5, seed: 4).apply(to: set)
        XCTAssertEqual(a.x, try InputTransform.noise(std: 0.5, seed: 4).apply(to: set).x)
        XCTAssertNotEqual(a.x, try InputTransform.noise(std: 0.5, seed: 5).apply(to: set).x)
        // Without its own seed, noise draws from the seed it is given (per task and split).
        XCTAssertNotEqual(try InputTransform.noise(std: 0.5, seed: nil).apply(to: set, seed: 1).x,
                          try InputTransform.noise(std: 0.5, seed: nil).apply(to: set, seed: 2).x)
        let diff = zip(a.x, set.x).map { Double($0 - $1) }
        let std = (diff.map { $0 * $0 }.reduce(0, +) / Double(diff.count)).squareRoot()
        XCTAssertEqual(std, 0.5, accuracy: 0.1)
        XCTAssertEqual(try InputTransform.invert.apply(to: set).x, set.x.map { 1 - $0 })
        XCTAssertEqual(try InputTransform.contrast(factor: 2).apply(to: set).x, set.x.map { 0.5 + 2 * ($0 - 0.5) })
        XCTAssertThrowsError(try InputTransform.contrast(factor: 0).apply(to: set))
    }
}
