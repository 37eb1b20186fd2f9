/// Where finished trials live: the only thing a study persists (Optuna's Storage).
///
/// A stored result never changes. `LayerSplitStore` keeps them in the run's `log.h5`; tests use
/// `InMemoryTrialStorage`.
public protocol TrialStorage: AnyObject {
    /// The stored result of `key`, if that trial has finished.
    func result(for key: TrialKey) -> TrialResult?
    /// Stores a finished trial, whole or not at all.
    func save(_ result: TrialResult) throws
    /// Every stored result.
    var results: [TrialResult] { get }
}

/// Trials kept in memory, for tests and throw-away runs.
public final class InMemoryTrialStorage: TrialStorage {
    private var byKey: [TrialKey: TrialResult] = [:]
    public init() {}
    public func result(for key: TrialKey) -> TrialResult? { byKey[key] }
    public func save(_ result: TrialResult) throws { byKey[result.key] = result }
    public var results: [TrialResult] { byKey.values.sorted { $0.key < $1.key } }
}

/// Trains one trial. The study calls it only for keys the storage does not have yet.
public protocol TrialRunner: AnyObject {
    /// Trains `key` (continuing `from`, a shorter trial of the same mask and seed, when its checkpoint exists)
    /// and evaluates it. Throws only for errors that should stop the whole study (a broken output folder);
    /// a trial that diverges or fails returns a result with that state.
    func run(_ key: TrialKey, continuing from: TrialKey?, progress: (TrialProgress) -> Void) throws -> TrialResult
}

/// Where a running trial is, for progress lines.
public struct TrialProgress: Sendable {
    public var step: Int
    public var steps: Int
    public var loss: Float

    public init(step: Int, steps: Int, loss: Float) {
        self.step = step
        self.steps = steps
        self.loss = loss
    }
}
