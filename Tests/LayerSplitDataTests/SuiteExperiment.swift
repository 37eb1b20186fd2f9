import Foundation
import LayerSplitData
import LayerSplitEngine
import XCTest

/// Trains one model for `mask` on `data` and returns the mean test accuracy over tasks.
func trainedAccuracy(_ data: [TaskData], mask: String, width: Int = 64, steps: Int = 300, batchSize: Int = 32,
                     lr: Float = 0.05, seed: UInt64) throws -> Double {
    let units = Array(repeating: UnitSpec.linear(width), count: mask.count)
    let spec = ModelSpec(inputShape: data[0].train.shape, units: units, taskClasses: data.map(\.train.classes))
    var rng = SplitMix64(seed: seed).derived(1)
    let model = try MultiTaskModel(spec: spec, mask: SharingMask(parsing: mask), rng: &rng)
    let trainer = TrainingRecipe(steps: steps, batchSize: batchSize, learningRate: lr).trainer(for: model)
    let batcher = Batcher(tasks: data.map(\.train), batchSize: batchSize, seed: seed &+ 2)
    for _ in 0..<steps { try trainer.step(batcher.next()) }
    return try trainer.evaluate(Batcher.evaluationBatches(data.map(\.test), batchSize: 256)).meanAccuracy
}

/// The experiment behind the synthetic suites' defaults (DESIGN.md, docs/DATA.md): a 4-unit MLP (linear:64 x4)
/// with masks SSSS, TTSS, SSTT and TTTT on both suites, 3 seeds. Run it with
/// `LAYERSPLIT_SUITE_EXPERIMENT=1 swift test ... --filter SuiteExperiment`; it is skipped otherwise.
final class SuiteExperiment: XCTestCase {
    func testMaskOrderingOnBuiltInSuites() throws {
        let env = ProcessInfo.processInfo.environment
        guard env["LAYERSPLIT_SUITE_EXPERIMENT"] != nil else {
            throw XCTSkip("set LAYERSPLIT_SUITE_EXPERIMENT=1 to run the synthetic-suite experiment (a few seconds)")
        }
        func num(_ k: String, _ d: Double) -> Double { env[k].flatMap(Double.init) ?? d }
        let steps = Int(num("STEPS", 300))
        let masks = (env["MASKS"] ?? "SSSS,TTSS,SSTT,TTTT").split(separator: ",").map(String.init)
        let seeds: [UInt64] = [0, 1, 2]
        let suites: [(String, (UInt64) -> [TaskData])] = [
            ("multi-domain", { s in
                SyntheticSuite.multiDomain(tasks: 4, classes: Int(num("MD_CLASSES", 10)), features: Int(num("MD_FEATURES", 64)),
                                           trainPerTask: Int(num("MD_TRAIN", 512)), testPerTask: 512,
                                           noise: Float(num("MD_NOISE", 2)), seed: s)
            }),
            ("multi-task", { s in
                SyntheticSuite.multiTask(tasks: 4, classes: Int(num("MT_CLASSES", 4)), clusters: Int(num("MT_CLUSTERS", 16)),
                                         features: Int(num("MT_FEATURES", 64)), trainPerTask: Int(num("MT_TRAIN", 512)),
                                         testPerTask: 512, noise: Float(num("MT_NOISE", 2)), seed: s)
            }),
        ]
        for (name, make) in suites where env["SUITE"] == nil || env["SUITE"] == name {
            for mask in masks {
                var accs: [Double] = []
                for s in seeds {
                    do {
                        accs.append(try trainedAccuracy(make(s), mask: mask, steps: steps, lr: Float(num("LR", 0.05)), seed: s))
                    } catch {
                        print("\(name) \(mask) seed \(s): \(error)")
                        accs.append(.nan)
                    }
                }
                let mean = accs.reduce(0, +) / Double(accs.count)
                print(String(format: "%@ %@ mean %.4f  seeds %@", name, mask, mean,
                             accs.map { String(format: "%.4f", $0) }.joined(separator: " ")))
            }
        }
    }
}
