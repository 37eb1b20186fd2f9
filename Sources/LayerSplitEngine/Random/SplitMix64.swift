#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, fast generator with a 64-bit state.
///
/// Every random choice in LayerSplit (initialisation, data order, synthetic data) takes an injected generator
/// seeded from the run's seed, so a run repeats bit for bit. Not for cryptography.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// An independent generator for a named sub-stream (for example one per task or per candidate), so that
    /// adding a consumer does not shift the numbers another consumer sees.
    public func derived(_ stream: UInt64) -> SplitMix64 {
        var g = SplitMix64(seed: state ^ (stream &* 0xD1B5_4A32_D192_ED03))
        _ = g.next()
        return g
    }
}

extension RandomNumberGenerator {
    /// A uniform Float in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// A standard normal sample (Box–Muller; one of the pair is discarded to keep the stream simple).
    @inline(__always)
    public mutating func nextNormal() -> Float {
        var u1 = Double(next() >> 11) * 0x1p-53
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}


extension Tensor {
    /// Fills with N(0, std²) samples.
    public func fillNormal(std: Float, rng: inout some RandomNumberGenerator) {
        for i in 0..<count { data[i] = rng.nextNormal() * std }
    }

    /// Fills with U(-bound, bound) samples.
    public func fillUniform(bound: Float, rng: inout some RandomNumberGenerator) {
        for i in 0..<count { data[i] = (rng.nextUnitFloat() * 2 - 1) * bound }
    }
}
