import LayerSplitEngine

/// Built-in data made from a seed in milliseconds, so that tests and the default run need no files.
public enum SyntheticSuite {
    /// A multi-domain suite: every task classifies the same `classes` Gaussian clusters in `features`
    /// dimensions, but each task (domain) sees them through its own fixed input transform — a permutation of
    /// the features with random sign flips. The class structure is shared while the input statistics are not:
    /// the situation where task-specific *bottom* units should pay off.
    ///
    /// Clusters are centred on N(0, 1) prototypes; examples add N(0, noise²) per feature.
    public static func multiDomain(
        tasks: Int = 4, classes: Int = 10, features: Int = 64, trainPerTask: Int = 512, testPerTask: Int = 256,
        noise: Float = 1.0, seed: UInt64 = 0
    ) -> [TaskData] {
        var rng = SplitMix64(seed: seed)
        var prototypes = [Float](repeating: 0, count: classes * features)
        for i in prototypes.indices { prototypes[i] = rng.nextNormal() }
        return (0..<tasks).map { t in
            var domainRNG = rng.derived(UInt64(t + 1))
            var permutation = Array(0..<features)
            permutation.shuffle(using: &domainRNG)
            let signs: [Float] = (0..<features).map { _ in domainRNG.next() & 1 == 0 ? 1 : -1 }
            func make(_ n: Int, _ split: String) -> LabeledSet {
                var x = [Float](repeating: 0, count: n * features)
                var y = [Int32](repeating: 0, count: n)
                for i in 0..<n {
                    let c = i % classes  // balanced classes
                    y[i] = Int32(c)
                    for f in 0..<features {
                        let v = prototypes[c * features + f] + noise * domainRNG.nextNormal()
                        x[i * features + permutation[f]] = signs[f] * v
                    }
                }
                return LabeledSet(name: "domain\(t)/\(split)", shape: [features], x: x, y: y, classes: classes)
            }
            return TaskData(name: "domain\(t)", train: make(trainPerTask, "train"), test: make(testPerTask, "test"))
        }
    }
}
