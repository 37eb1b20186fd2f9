import ArgumentParser
import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitRun
import LayerSplitSearch

extension LayerSplitCommand.Bench {
    /// The main job's unit of work, timed end to end: one candidate trained briefly on small batches and evaluated
    /// once on a test set, by the same `TrainingTrialRunner` a search uses (no pretraining, no checkpoint, no log:
    /// those are the search's, not the candidate's). `bench/trials.py` runs it beside `bench/trials_pytorch.py`.
    struct Trials: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time whole small-batch candidates (train + one test evaluation) of the two search protocols.")

        @Option(help: "Protocols, comma-separated: mlp (Adam, 3 tasks x 64 rows, 189 steps, 11,360 test examples), cnn (SGD momentum, cosine, 3 tasks x 32 rows, 200 steps, 3,000 test examples).")
        var protocols: String = "mlp,cnn"
        @Option(help: "Masks, comma-separated (4 letters of S, T, A).") var masks: String = "SSSS,TTSS,SSTT,TTTT,AAAA"
        @Option(help: "Thread counts, comma-separated.") var threads: String = "1,2"
        @Option(help: "Override the protocol's training steps (for smoke tests).") var steps: Int?
        @Option(help: "Candidates timed per case; the fastest is reported.") var repeats: Int = 1
        @Flag(help: "Also time the phases (batching, forward+backward, optimiser, evaluation) with in-code timers.")
        var phases = false
        @Flag(help: "Print one JSON line per case instead of text.") var json = false

        func validate() throws {
            for p in protocols.split(separator: ",") where TrialProtocol(rawValue: String(p)) == nil {
                throw ValidationError("unknown protocol '\(p)' (use mlp or cnn)")
            }
            for m in masks.split(separator: ",") { _ = try SharingMask(parsing: String(m)) }
            guard threadCounts.allSatisfy({ $0 >= 1 }), !threadCounts.isEmpty else {
                throw ValidationError("--threads must list positive integers")
            }
            guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        }

        private var threadCounts: [Int] { threads.split(separator: ",").compactMap { Int($0) } }

        func run() throws {
            let cpu = Self.cpuModel()
            let date = ISO8601DateFormatter().string(from: Date())
            if !json {
                print("bench trials: \(cpu); OpenBLAS \(BLAS.coreName); \(date)")
            }
            var peaks: [Int: Double] = [:]
            for t in threadCounts { peaks[t] = Peak.sgemmGFLOPS(size: 2048, threads: t) }
            for name in protocols.split(separator: ",") {
                let proto = TrialProtocol(rawValue: String(name))!
                let data = proto.data()
                for t in threadCounts {
                    for m in masks.split(separator: ",") {
                        let mask = try SharingMask(parsing: String(m))
                        let steps = self.steps ?? proto.recipe.steps
                        let flops = try proto.flops(mask: mask, data: data, steps: steps)
                        Threads.set(t)
                        var best = Double.infinity
                        var accuracy = 0.0
                        for _ in 0..<repeats {
                            let (seconds, acc) = try proto.runCandidate(mask: mask, data: data, steps: steps)
                            best = min(best, seconds)
                            accuracy = acc
                        }
                        let floor = Double(flops) / (peaks[t]! * 1e9)
                        var phaseText = "", phaseJSON = ""
                        if phases {
                            let p = try proto.phases(mask: mask, data: data, steps: steps)
                            phaseText = String(format: "\n    phases: batch %.3f s, fwd+bwd %.3f s, optimiser %.3f s, evaluation %.3f s, other %.3f s",
                                               p.batch, p.gradients, p.optimizer, p.evaluation, p.total - p.batch - p.gradients - p.optimizer - p.evaluation)
                            phaseJSON = String(format: ",\"phase_batch\":%.6f,\"phase_gradients\":%.6f,\"phase_optimizer\":%.6f,\"phase_evaluation\":%.6f,\"phase_total\":%.6f",
                                               p.batch, p.gradients, p.optimizer, p.evaluation, p.total)
                        }
                        if json {
                            print("{\"engine\":\"layersplit\",\"protocol\":\"\(proto.rawValue)\",\"mask\":\"\(mask)\",\"threads\":\(t),"
                                + "\"steps\":\(steps),\"seconds_per_candidate\":\(best),\"candidates_per_hour\":\(3600 / best),"
                                + "\"gflop\":\(Double(flops) / 1e9),\"peak_gflops\":\(peaks[t]!),\"flop_floor_seconds\":\(floor),"
                                + "\"accuracy\":\(accuracy),\"core\":\"\(BLAS.coreName)\",\"cpu\":\"\(cpu)\",\"date\":\"\(date)\"\(phaseJSON)}")
                        } else {
                            print(String(format: "%@ %@ threads %d: %.3f s/candidate, %.0f candidates/h, %.2f GFLOP, FLOP floor %.3f s (peak %.1f GFLOP/s), test accuracy %.3f%@",
                                         proto.rawValue, mask.description, t, best, 3600 / best, Double(flops) / 1e9, floor,
                                         peaks[t]!, accuracy, phaseText))
                        }
                    }
                }
            }
        }

        /// The CPU's model name from /proc/cpuinfo.
        static func cpuModel() -> String {
            guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown CPU" }
            for line in text.split(separator: "\n") where line.hasPrefix("model name") {
                return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
            }
            return "unknown CPU"
        }

    }
}

/// The two protocols of the main job (bench/README.md, "Trials"); bench/trials_pytorch.py mirrors them.
enum TrialProtocol: String, CaseIterable {
    case mlp, cnn

    var spec: ModelSpec {
        switch self {
        case .mlp: ModelSpec(inputShape: [784], units: Array(repeating: .linear(512), count: 4), taskClasses: [10, 10, 10])
        case .cnn: ModelSpec(inputShape: [28, 28, 1], units: [.conv(16), .residual(16), .residual(32, stride: 2), .residual(64, stride: 2)],
                             taskClasses: [10, 10, 10])
        }
    }

    var recipe: TrainingRecipe {
        switch self {
        case .mlp: TrainingRecipe(steps: 189, batchSize: 64, optimizer: .adam, learningRate: 1e-3, momentum: 0.9, weightDecay: 0,
                                  schedule: .constant)
        case .cnn: TrainingRecipe(steps: 200, batchSize: 32, optimizer: .sgd, learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4,
                                  schedule: .cosine)
        }
    }

    /// Training examples per task, and test examples per task (11,360 in all for the MLP, 3 x 1,000 for the CNN).
    var trainPerTask: Int { 2000 }
    var testPerTask: [Int] { self == .mlp ? [3787, 3787, 3786] : [1000, 1000, 1000] }

    /// Synthetic data of the protocol's shapes: N(0, 1) inputs, labels uniform over 10 classes, seed 7.
    func data() -> (train: [LabeledSet], test: [LabeledSet]) {
        var rng = SplitMix64(seed: 7)
        let shape = spec.inputShape, row = shape.reduce(1, *)
        func set(_ n: Int, _ name: String) -> LabeledSet {
            var x = [Float](repeating: 0, count: n * row)
            for i in x.indices { x[i] = rng.nextNormal() }
            let y = (0..<n).map { _ in Int32(rng.next() % 10) }
            return LabeledSet(name: name, shape: shape, x: x, y: y, classes: 10)
        }
        let train = (0..<spec.taskCount).map { set(trainPerTask, "task\($0)/train") }
        let test = (0..<spec.taskCount).map { set(testPerTask[$0], "task\($0)/test") }
        return (train, test)
    }

    func runner(_ data: (train: [LabeledSet], test: [LabeledSet]), steps: Int) -> TrainingTrialRunner {
        var recipe = self.recipe
        recipe.steps = steps
        return TrainingTrialRunner(spec: spec, recipe: recipe, evalEvery: steps, train: data.train, evaluation: data.test,
                                   pretrained: { _ in nil }, checkpoints: nil)
    }

    /// Seconds for one candidate end to end (model built, trained, evaluated once), and its mean test accuracy.
    func runCandidate(mask: SharingMask, data: (train: [LabeledSet], test: [LabeledSet]), steps: Int) throws -> (Double, Double) {
        let runner = runner(data, steps: steps)
        let t0 = DispatchTime.now().uptimeNanoseconds
        let result = try runner.run(TrialKey(mask: mask, seed: 0, steps: steps), continuing: nil, progress: { _ in })
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        guard result.state == .done else { throw ValidationError("\(rawValue) \(mask): \(result.state) \(result.message)") }
        return (dt, result.accuracy.reduce(0, +) / Double(max(result.accuracy.count, 1)))
    }

    /// The candidate's GEMM FLOPs: `steps` training steps plus one evaluation of the test set, counted at 1 thread.
    func flops(mask: SharingMask, data: (train: [LabeledSet], test: [LabeledSet]), steps: Int) throws -> Int {
        Threads.set(1)
        var rng = SplitMix64(seed: 0)
        let model = try MultiTaskModel(spec: spec, mask: mask, rng: &rng)
        let trainer = recipe.trainer(for: model)
        let batch = Batcher(tasks: data.train, batchSize: recipe.batchSize, seed: 1).next()
        let step = try FlopCounter.measure { try trainer.stepUnchecked(batch) }
        let evalBatches = Batcher.evaluationBatches(data.test, batchSize: 256)
        let eval = try FlopCounter.measure { _ = try model.evaluate(evalBatches) }
        return step * steps + eval
    }

    /// Where one candidate's time goes, by phase (the runner's loop, written out with timers).
    func phases(mask: SharingMask, data: (train: [LabeledSet], test: [LabeledSet]), steps: Int) throws
        -> (batch: Double, gradients: Double, optimizer: Double, evaluation: Double, total: Double)
    {
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        var batchT: UInt64 = 0, gradT: UInt64 = 0, optT: UInt64 = 0
        let start = now()
        var rng = SplitMix64(seed: 0).derived(1)
        let model = try MultiTaskModel(spec: spec, mask: mask, rng: &rng)
        var recipe = self.recipe
        recipe.steps = steps
        let trainer = recipe.trainer(for: model)
        let batcher = Batcher(tasks: data.train, batchSize: recipe.batchSize, seed: SplitMix64(seed: 0).derived(2).state)
        let schedule = recipe.learningRateSchedule
        for s in 0..<steps {
            let t0 = now()
            let batch = batcher.next()
            let t1 = now()
            _ = try model.computeGradients(batch)
            let t2 = now()
            trainer.optimizer.step(lr: schedule.rate(at: s))
            let t3 = now()
            batchT += t1 - t0
            gradT += t2 - t1
            optT += t3 - t2
        }
        let e0 = now()
        _ = try model.evaluate(Batcher.evaluationBatches(data.test, batchSize: 256))
        let end = now()
        func s(_ ns: UInt64) -> Double { Double(ns) / 1e9 }
        return (s(batchT), s(gradT), s(optT), s(end - e0), s(end - start))
    }
}
