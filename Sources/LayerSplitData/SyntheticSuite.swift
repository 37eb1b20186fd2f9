import LayerSplitEngine

/// Built-in data made from a seed in milliseconds, so that tests and the default run need no files.
///
/// The two suites are tuned so that the papers' two situations show with a small MLP (4 x linear:64, 300 steps
/// of 32 rows per task, SGD lr 0.05, cosine; mean test accuracy over seeds 0, 1, 2 — `SuiteExperiment`):
///
/// | suite | SSSS | TTSS | SSTT | TTTT |
/// |---|---|---|---|---|
/// | multi-domain (defaults) | 0.805 | **0.895** | 0.850 | 0.903 |
/// | multi-task (defaults) | 0.855 | 0.788 | **0.858** | 0.785 |
///
/// Task-specific bottoms beat task-specific tops on the multi-domain suite and the reverse holds on the
/// multi-task suite, for every seed, without saturating accuracy (so a search can tell masks apart). Inputs
/// are scaled to about unit variance, so the default learning rates suit them.
public enum SyntheticSuite {
    /// A multi-domain suite: every task classifies the same `classes` Gaussian clusters in `features`
    /// dimensions, but each task (domain) sees them through its own fixed input transform — a permutation of
    /// the features with random sign flips. The class structure is shared while the input statistics are not:
    /// the situation where task-specific *bottom* units should pay off.
    ///
    /// Clusters are centred on N(0, 1) prototypes; examples add N(0, noise²) per feature, and every feature is
    /// then divided by √(1 + noise²). Classes are balanced (example i has class i mod classes). The validation
    /// split (`validationPerTask` examples, default none) is drawn from the same distribution.
    public static func multiDomain(
        tasks: Int = 4, classes: Int = 10, features: Int = 64, trainPerTask: Int = 512, testPerTask: Int = 256,
        noise: Float = 2.0, validationPerTask: Int = 0, seed: UInt64 = 0
    ) -> [TaskData] {
        var rng = SplitMix64(seed: seed)
        let scale = 1 / (1 + noise * noise).squareRoot()
        var prototypes = [Float](repeating: 0, count: classes * features)
        for i in prototypes.indices { prototypes[i] = rng.nextNormal() }
        return (0..<tasks).map { t in
            var domainRNG = rng.derived(UInt64(t + 1))
            let permutation = InputTransform.permutation(count: features, seed: domainRNG.next())
            let signs: [Float] = (0..<features).map { _ in domainRNG.next() & 1 == 0 ? 1 : -1 }
            func make(_ n: Int, _ split: String) -> LabeledSet {
                var x = [Float](repeating: 0, count: n * features)
                var y = [Int32](repeating: 0, count: n)
                for i in 0..<n {
                    let c = i % classes  // balanced classes
                    y[i] = Int32(c)
                    for f in 0..<features {
                        let v = prototypes[c * features + f] + noise * domainRNG.nextNormal()
                        x[i * features + permutation[f]] = signs[f] * v * scale
                    }
                }
                return LabeledSet(name: "domain\(t)/\(split)", shape: [features], x: x, y: y, classes: classes)
            }
            let train = make(trainPerTask, "train"), test = make(testPerTask, "test")
            return TaskData(name: "domain\(t)", train: train, validation: make(validationPerTask, "validation"), test: test,
                            provenance: TaskProvenance(
                                source: "synthetic multi-domain (seed \(seed))",
                                transform: "domain \(t): fixed feature permutation with sign flips",
                                labels: "\(classes) shared classes"))
        }
    }

    /// A multi-task suite: one input set — `clusters` Gaussian clusters in `features` dimensions, every task
    /// seeing the same examples — with a different label function per task: task t groups the clusters into
    /// `classes` classes by its own random balanced assignment. The input statistics are shared while the
    /// label functions are not: the situation where shared bottoms and task-specific *top* units are the usual
    /// answer.
    ///
    /// Clusters are centred on N(0, 1) prototypes; examples add N(0, noise²) per feature, and every feature is
    /// then divided by √(1 + noise²). Every task has the same input arrays (shared storage) and balanced classes
    /// (each class gets clusters / classes clusters, more or less one).
    public static func multiTask(
        tasks: Int = 4, classes: Int = 4, clusters: Int = 16, features: Int = 64, trainPerTask: Int = 512,
        testPerTask: Int = 256, noise: Float = 2.0, validationPerTask: Int = 0, seed: UInt64 = 0
    ) -> [TaskData] {
        precondition(clusters >= classes, "need at least as many clusters as classes")
        var rng = SplitMix64(seed: seed)
        let scale = 1 / (1 + noise * noise).squareRoot()
        var prototypes = [Float](repeating: 0, count: clusters * features)
        for i in prototypes.indices { prototypes[i] = rng.nextNormal() }
        var inputRNG = rng.derived(0x696E_7075)
        func inputs(_ n: Int) -> (x: [Float], cluster: [Int]) {
            var x = [Float](repeating: 0, count: n * features)
            var cluster = [Int](repeating: 0, count: n)
            for i in 0..<n {
                let k = i % clusters
                cluster[i] = k
                for f in 0..<features { x[i * features + f] = (prototypes[k * features + f] + noise * inputRNG.nextNormal()) * scale }
            }
            return (x, cluster)
        }
        let train = inputs(trainPerTask), test = inputs(testPerTask), validation = inputs(validationPerTask)
        return (0..<tasks).map { t in
            // A balanced random assignment of clusters to classes: cluster order shuffled, then dealt round-robin.
            var taskRNG = rng.derived(UInt64(t + 1))
            let order = InputTransform.permutation(count: clusters, seed: taskRNG.next())
            var assign = [Int32](repeating: 0, count: clusters)
            for (rank, k) in order.enumerated() { assign[k] = Int32(rank % classes) }
            func set(_ part: (x: [Float], cluster: [Int]), _ split: String) -> LabeledSet {
                LabeledSet(name: "task\(t)/\(split)", shape: [features], x: part.x, y: part.cluster.map { assign[$0] },
                           classes: classes)
            }
            return TaskData(name: "task\(t)", train: set(train, "train"), validation: set(validation, "validation"),
                            test: set(test, "test"),
                            provenance: TaskProvenance(
                                source: "synthetic multi-task (seed \(seed)): one input set of \(clusters) clusters",
                                transform: "none",
                                labels: "task \(t): its own grouping of the \(clusters) clusters into \(classes) classes"))
        }
    }
}
