import LayerSplitEngine
import LayerSplitSearch

/// Deterministic trials for the store's tests, the crash-safety writer (`layersplit test-log-writer`) and
/// `layersplit bench store`: trial `i` is always the same, so a reader can check every field of what it finds.
public enum SampleTrials {
    /// Trial `i` of 3 tasks and `points` curve points, on a 4-unit mask; states and messages vary with `i`.
    public static func trial(_ i: Int, tasks: Int = 3, points: Int = 4) -> TrialResult {
        let states: [SharingState] = (0..<4).map { u in (i >> u) & 1 == 1 ? .specific : .shared }
        let base = Double(i % 1000) / 1000
        let acc: [[Double]] = (0..<points).map { p in (0..<tasks).map { t in Double(p * 10 + t) / 100 + base } }
        let diverged = i % 7 == 3
        return TrialResult(
            key: TrialKey(mask: SharingMask(states), seed: UInt64(i / 16), steps: 300 + (i % 3) * 100),
            state: diverged ? .diverged : .done,
            counts: ParameterCounts(shared: 1000 + i, specific: 2000, heads: 30),
            accuracy: acc.last ?? [], loss: diverged ? [] : finalLoss(i, tasks),
            curve: (0..<points).map { p in CurvePoint(step: (p + 1) * 100, trainLoss: trainLoss(p, tasks, nan: diverged && p == points - 1), accuracy: acc[p]) },
            stepsTrained: 300, seconds: 1.5 * Double(i % 50), message: diverged ? "loss became NaN at step \(i), \"quoted\"" : "")
    }

    static func trainLoss(_ p: Int, _ tasks: Int, nan: Bool) -> [Float] {
        (0..<tasks).map { t -> Float in nan ? .nan : 2 / Float(p + 1) + Float(t) / 10 }
    }

    static func finalLoss(_ i: Int, _ tasks: Int) -> [Float] {
        let shift = Float(i % 100) / 1000
        return (0..<tasks).map { t -> Float in 0.5 + Float(t) + shift }
    }
}
