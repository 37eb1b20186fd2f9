import Foundation
import LayerSplitEngine

/// A fixed per-domain input transform: one data set seen through it becomes another domain with the same
/// labels (the multi-domain setting, where task-specific bottom units should pay off).
///
/// Transforms act on each example alone and are the same for every example of a task, except `noise`, whose
/// values are drawn once per example at load time (a fixed corruption, not augmentation). They are applied
/// before normalisation, so `invert` and `contrast` act on the loaded values (uint8 pixels are read as [0, 1]).
public enum InputTransform: Hashable, Sendable, CustomStringConvertible {
    /// A fixed permutation of the pixel positions (channels move together) or of the features of a vector,
    /// drawn from `seed` alone: the same seed gives the same permutation for every run seed.
    case permute(seed: UInt64)
    /// `v → 1 − v`.
    case invert
    /// Rotation counter-clockwise by `degrees`. Multiples of 90 move pixels exactly (90 and 270 swap height
    /// and width); other angles resample bilinearly about the centre, filling with 0 outside the image.
    case rotate(degrees: Double)
    /// A mirror image: `horizontal` reverses each row (left ↔ right), otherwise the rows' order (top ↔ bottom).
    case flip(horizontal: Bool)
    /// `v → 0.5 + factor · (v − 0.5)`: lower (factor < 1) or higher contrast around mid-grey; factor > 0.
    case contrast(factor: Float)
    /// Adds N(0, std²) to every value, drawn once per example from `seed` (or, when nil, from the data seed and
    /// the task's position).
    case noise(std: Float, seed: UInt64?)

    /// The names used in a search space's `transform:` field.
    public static let names = ["permute", "invert", "rotate", "flip", "contrast", "noise"]

    public var description: String {
        switch self {
        case let .permute(seed): "permute seed \(seed)"
        case .invert: "invert"
        case let .rotate(d): "rotate \(d == d.rounded() ? String(Int(d)) : String(d))"
        case let .flip(h): "flip \(h ? "horizontal" : "vertical")"
        case let .contrast(f): "contrast \(f)"
        case let .noise(std, seed): "noise std \(std)" + (seed.map { " seed \($0)" } ?? "")
        }
    }

    /// Whether the transform is a bijection of the inputs (and so loses nothing): all but `noise` and
    /// rotations by angles that are not multiples of 90 degrees.
    public var isBijection: Bool {
        switch self {
        case .noise: false
        case let .rotate(d): d.truncatingRemainder(dividingBy: 90) == 0
        default: true
        }
    }

    /// The per-example shape after the transform; throws when the transform needs an image and `shape` is not one.
    public func outputShape(for shape: [Int]) throws -> [Int] {
        switch self {
        case let .rotate(d):
            guard shape.count == 3 else { throw DataError.invalid("'\(self)' needs images [H, W, C], got examples of shape \(shape)") }
            let quarter = Self.quarterTurns(d)
            return quarter.map { $0 % 2 == 1 ? [shape[1], shape[0], shape[2]] : shape } ?? shape
        case .flip:
            guard shape.count == 3 else { throw DataError.invalid("'\(self)' needs images [H, W, C], got examples of shape \(shape)") }
            return shape
        case let .contrast(f):
            guard f > 0, f.isFinite else { throw DataError.invalid("contrast factor must be positive, got \(f)") }
            return shape
        case let .noise(std, _):
            guard std >= 0, std.isFinite else { throw DataError.invalid("noise std must be 0 or more, got \(std)") }
            return shape
        default:
            return shape
        }
    }

    /// `set` seen through the transform. `seed` is used by `noise` without a seed of its own; give each split
    /// its own seed so that the splits get independent noise.
    public func apply(to set: LabeledSet, seed: UInt64 = 0) throws -> LabeledSet {
        let outShape = try outputShape(for: set.shape)
        var out = set
        out.shape = outShape
        switch self {
        case let .permute(s):
            let (positions, channels) = Self.positionsAndChannels(set.shape)
            let p = Self.permutation(count: positions, seed: s)
            // Output position p[k] takes input position k.
            out.x = Self.mapRows(set) { src, dst in
                for k in 0..<positions {
                    (dst + p[k] * channels).update(from: src + k * channels, count: channels)
                }
            }
        case .invert:
            out.x = set.x.map { 1 - $0 }
        case let .contrast(f):
            out.x = set.x.map { 0.5 + f * ($0 - 0.5) }
        case let .noise(std, s):
            var rng = SplitMix64(seed: s ?? seed).derived(0x6E6F_6973)
            out.x = set.x.map { $0 + std * rng.nextNormal() }
        case let .flip(horizontal):
            let (h, w, c) = (set.shape[0], set.shape[1], set.shape[2])
            out.x = Self.mapRows(set) { src, dst in
                for r in 0..<h {
                    for col in 0..<w {
                        let from = horizontal ? (r * w + (w - 1 - col)) : ((h - 1 - r) * w + col)
                        (dst + (r * w + col) * c).update(from: src + from * c, count: c)
                    }
                }
            }
        case let .rotate(d):
            out.x = Self.rotate(set, degrees: d)
        }
        return out
    }

    /// The inverse transform applied to `set` (so `applyInverse(apply(x)) == x`), or nil when the transform is
    /// not a bijection.
    public func applyInverse(to set: LabeledSet) throws -> LabeledSet? {
        guard isBijection else { return nil }
        switch self {
        case let .permute(s):
            let (positions, channels) = Self.positionsAndChannels(set.shape)
            let p = Self.permutation(count: positions, seed: s)
            var out = set
            out.x = Self.mapRows(set) { src, dst in
                for k in 0..<positions {
                    (dst + k * channels).update(from: src + p[k] * channels, count: channels)
                }
            }
            return out
        case .invert, .flip:
            return try apply(to: set)
        case let .contrast(f):
            return try InputTransform.contrast(factor: 1 / f).apply(to: set)
        case let .rotate(d):
            return try InputTransform.rotate(degrees: -d).apply(to: set)
        case .noise:
            return nil
        }
    }

    /// A permutation of `0..<count` drawn from `seed` alone (Fisher–Yates on SplitMix64), independent of the
    /// standard library's shuffling algorithm so that it never changes between Swift versions.
    public static func permutation(count: Int, seed: UInt64) -> [Int] {
        var rng = SplitMix64(seed: seed).derived(0x7065_726D)
        var p = Array(0..<count)
        var i = count - 1
        while i > 0 {
            let j = Int(rng.next() % UInt64(i + 1))
            p.swapAt(i, j)
            i -= 1
        }
        return p
    }

    // MARK: - Implementation

    /// Pixel positions and channels of an image shape; a vector's features are positions of one channel.
    static func positionsAndChannels(_ shape: [Int]) -> (Int, Int) {
        shape.count == 3 ? (shape[0] * shape[1], shape[2]) : (shape.reduce(1, *), 1)
    }

    /// Quarter turns for a multiple of 90 degrees (0...3), nil otherwise.
    static func quarterTurns(_ degrees: Double) -> Int? {
        guard degrees.truncatingRemainder(dividingBy: 90) == 0 else { return nil }
        let q = Int(degrees / 90) % 4
        return q < 0 ? q + 4 : q
    }

    /// A new `x` for `set` filled example by example: `body(source row, destination row)`.
    static func mapRows(_ set: LabeledSet, _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        let row = set.rowSize, n = set.count
        return [Float](unsafeUninitializedCapacity: n * row) { out, initialized in
            out.baseAddress!.initialize(repeating: 0, count: n * row)
            set.x.withUnsafeBufferPointer { src in
                for i in 0..<n { body(src.baseAddress! + i * row, out.baseAddress! + i * row) }
            }
            initialized = n * row
        }
    }

    static func rotate(_ set: LabeledSet, degrees: Double) -> [Float] {
        let (h, w, c) = (set.shape[0], set.shape[1], set.shape[2])
        if let q = quarterTurns(degrees) {
            // Output (r, col) of the rotated image takes input (sr, sc).
            let (oh, ow) = q % 2 == 1 ? (w, h) : (h, w)
            return mapRows(set) { src, dst in
                for r in 0..<oh {
                    for col in 0..<ow {
                        let (sr, sc): (Int, Int) = switch q {
                        case 1: (col, w - 1 - r)
                        case 2: (h - 1 - r, w - 1 - col)
                        case 3: (h - 1 - col, r)
                        default: (r, col)
                        }
                        (dst + (r * ow + col) * c).update(from: src + (sr * w + sc) * c, count: c)
                    }
                }
            }
        }
        // Bilinear resampling: output pixel (r, col) reads the input at the point rotated back by -θ.
        let theta = degrees * Double.pi / 180
        let (cosT, sinT) = (cos(theta), sin(theta))
        let cy = Double(h - 1) / 2, cx = Double(w - 1) / 2
        return mapRows(set) { src, dst in
            for r in 0..<h {
                for col in 0..<w {
                    let x = Double(col) - cx, y = cy - Double(r)
                    let xs = x * cosT + y * sinT, ys = -x * sinT + y * cosT
                    let fr = cy - ys, fc = cx + xs
                    let r0 = Int(fr.rounded(.down)), c0 = Int(fc.rounded(.down))
                    let ar = Float(fr - Double(r0)), ac = Float(fc - Double(c0))
                    for ch in 0..<c {
                        func at(_ rr: Int, _ cc: Int) -> Float {
                            rr >= 0 && rr < h && cc >= 0 && cc < w ? src[(rr * w + cc) * c + ch] : 0
                        }
                        let top = at(r0, c0) * (1 - ac) + at(r0, c0 + 1) * ac
                        let bottom = at(r0 + 1, c0) * (1 - ac) + at(r0 + 1, c0 + 1) * ac
                        dst[(r * w + col) * c + ch] = top * (1 - ar) + bottom * ar
                    }
                }
            }
        }
    }
}
