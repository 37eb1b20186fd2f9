import LayerSplitEngine

/// Seeded, class-stratified choices of examples: validation splits and subsamples. Every choice depends only
/// on the labels and the seed, and returns indices in ascending order (the batcher shuffles; evaluation does
/// not care).
public enum Sampling {
    /// Splits `labels`' indices into kept and carved-out parts: `round(fraction · n)` examples carved out,
    /// class-stratified as `stratifiedSample` (so both parts keep the class balance), chosen from `seed`.
    public static func stratifiedSplit(labels: [Int32], classes: Int, fraction: Double, seed: UInt64) -> (kept: [Int], carved: [Int]) {
        precondition(fraction >= 0 && fraction < 1, "fraction \(fraction)")
        let k = Int((fraction * Double(labels.count)).rounded())
        let carved = stratifiedSample(labels: labels, classes: classes, count: k, seed: seed)
        var isCarved = [Bool](repeating: false, count: labels.count)
        for i in carved { isCarved[i] = true }
        return (labels.indices.filter { !isCarved[$0] }, carved)
    }

    /// `count` indices of `labels`, stratified: each class gets its share of `count` in proportion to its
    /// frequency (largest remainders round), chosen at random from `seed`.
    public static func stratifiedSample(labels: [Int32], classes: Int, count: Int, seed: UInt64) -> [Int] {
        precondition(count >= 0 && count <= labels.count, "sample of \(count) from \(labels.count)")
        if count == labels.count { return Array(labels.indices) }
        let members = byClass(labels, classes)
        let exact = members.map { Double($0.count) * Double(count) / Double(labels.count) }
        var quota = exact.map { Int($0.rounded(.down)) }
        let remainders = exact.indices.sorted { (exact[$0] - Double(quota[$0]), $1) > (exact[$1] - Double(quota[$1]), $0) }
        var missing = count - quota.reduce(0, +)
        for c in remainders where missing > 0 && quota[c] < members[c].count {
            quota[c] += 1
            missing -= 1
        }
        var rng = SplitMix64(seed: seed)
        var chosen: [Int] = []
        chosen.reserveCapacity(count)
        for (c, m) in members.enumerated() { chosen += shuffled(m, &rng).prefix(quota[c]) }
        return chosen.sorted()
    }

    /// A stable 64-bit hash of a string (FNV-1a), for deriving seeds from names: unlike `Hasher`, the same in
    /// every process.
    public static func stableHash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01B3
        }
        return h
    }

    static func byClass(_ labels: [Int32], _ classes: Int) -> [[Int]] {
        var out = [[Int]](repeating: [], count: classes)
        for (i, l) in labels.enumerated() { out[Int(l)].append(i) }
        return out
    }

    /// Fisher–Yates on SplitMix64, independent of the standard library's shuffle.
    static func shuffled(_ xs: [Int], _ rng: inout SplitMix64) -> [Int] {
        var a = xs
        var i = a.count - 1
        while i > 0 {
            let j = Int(rng.next() % UInt64(i + 1))
            a.swapAt(i, j)
            i -= 1
        }
        return a
    }
}
