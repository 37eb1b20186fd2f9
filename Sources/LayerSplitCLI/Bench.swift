import ArgumentParser
import Foundation
import LayerSplitEngine

extension LayerSplitCommand {
    /// Measurements of the engine itself; `make bench` drives them and compares with PyTorch and numpy.
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure training speed and GEMM throughput (used by `make bench`).",
            subcommands: [Step.self, Peak.self, Trials.self, Interop.self, SearchEfficiency.self, StoreBench.self])
    }
}

extension LayerSplitCommand.Bench {
    enum ReferenceModel: String, ExpressibleByArgument, CaseIterable {
        case mlp, cnn
        var spec: ModelSpec { self == .mlp ? .referenceMLP : .referenceCNN }
        var batchPerTask: Int { self == .mlp ? 128 : 64 }
    }

    /// Times training steps of a reference model (DESIGN.md: the reference MLP and CNN).
    struct Step: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time training steps of a reference model for one mask.")

        @Option(help: "Reference model: mlp or cnn.") var model: ReferenceModel = .mlp
        @Option(help: "Sharing mask, one letter per unit.") var mask: String = "SSSS"
        @Option(help: "Threads.") var threads: Int = 1
        @Option(help: "Timed steps per repeat (the best of 3 repeats is reported).") var steps: Int = 20
        @Option(help: "Untimed warm-up steps.") var warmup: Int = 3
        @Flag(help: "Print one JSON line instead of text.") var json = false

        func run() throws {
            let spec = model.spec
            let mask = try SharingMask(parsing: self.mask)
            var rng = SplitMix64(seed: 42)
            let net = try MultiTaskModel(spec: spec, mask: mask, rng: &rng)
            let b = model.batchPerTask, tasks = spec.taskCount
            let inputs = Tensor(zeros: [b * tasks] + spec.inputShape)
            inputs.fillNormal(std: 1, rng: &rng)
            let labels = (0..<(b * tasks)).map { _ in Int32(rng.next() % 10) }
            let batch = TaskBatch(inputs: inputs, labels: labels,
                                  segments: (0..<tasks).map { $0 * b ..< ($0 + 1) * b })
            try batch.validate(for: spec)
            let trainer = Trainer(model: net, optimizer: SGD(parameters: net.parameters, momentum: 0.9, weightDecay: 5e-4),
                                  schedule: .constant(0.01))
            // Count the step's GEMM FLOPs once, single-threaded (the counter is not thread-safe).
            Threads.set(1)
            let flops = try FlopCounter.measure { try trainer.stepUnchecked(batch) }
            Threads.set(threads)
            for _ in 0..<warmup { try trainer.stepUnchecked(batch) }
            var best = Double.infinity
            for _ in 0..<3 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<steps { try trainer.stepUnchecked(batch) }
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(steps)
                best = min(best, dt)
            }
            let examples = Double(b * tasks) / best
            if json {
                print("{\"engine\":\"layersplit\",\"model\":\"\(model.rawValue)\",\"mask\":\"\(mask)\",\"threads\":\(threads),"
                    + "\"examples_per_sec\":\(examples),\"seconds_per_step\":\(best),\"step_gflop\":\(Double(flops) / 1e9),"
                    + "\"core\":\"\(BLAS.coreName)\"}")
            } else {
                print(String(format: "%@ %@ threads %d: %.0f examples/s, %.2f ms/step, %.3f GFLOP/step (%.1f GFLOP/s), OpenBLAS core %@",
                             model.rawValue, mask.description, threads, examples, best * 1e3, Double(flops) / 1e9,
                             Double(flops) / best / 1e9, BLAS.coreName))
            }
        }
    }

    /// Measures sgemm's peak on this machine with one large square product.
    struct Peak: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Measure the sgemm peak (GFLOP/s) with one large product.")

        @Option(help: "Threads.") var threads: Int = 1
        @Option(help: "Matrix size n (n x n times n x n).") var size: Int = 2048
        @Flag(help: "Print one JSON line instead of text.") var json = false

        func run() {
            let n = size
            let gflops = Self.sgemmGFLOPS(size: n, threads: threads)
            if json {
                print("{\"engine\":\"layersplit\",\"threads\":\(threads),\"peak_gflops\":\(gflops),\"core\":\"\(BLAS.coreName)\"}")
            } else {
                print(String(format: "sgemm %dx%dx%d, %d threads: %.1f GFLOP/s (OpenBLAS core %@)", n, n, n, threads, gflops, BLAS.coreName))
            }
        }

        /// sgemm GFLOP/s of a size³ product at `threads` (which it sets), best of 5 after one warm-up: the peak
        /// that `bench step` and `bench trials` express their speed against.
        static func sgemmGFLOPS(size n: Int, threads: Int) -> Double {
            Threads.set(threads)
            let a = Tensor(zeros: [n, n]), b = Tensor(zeros: [n, n]), c = Tensor(zeros: [n, n])
            var rng = SplitMix64(seed: 1)
            a.fillUniform(bound: 1, rng: &rng)
            b.fillUniform(bound: 1, rng: &rng)
            var best = Double.infinity
            for rep in 0..<6 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                BLAS.gemm(m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, c: c.data, ldc: n)
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if rep > 0 { best = min(best, dt) }
            }
            return 2 * Double(n) * Double(n) * Double(n) / best / 1e9
        }
    }
}
