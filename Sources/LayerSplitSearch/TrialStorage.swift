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

/// A storage that also reads trials from a pool it does not own, and writes only to its own: a shard reads
/// every log of the run folder and writes its own log; a merge reads the shards' trials and writes the run's.
///
/// Trials handed out from the pool that `own` lacks are recorded in the order the study first asked for them
/// (`borrowed`): the order a single process trains them, which is the order a merge appends them in.
public final class LayeredTrialStorage: TrialStorage {
    public let own: TrialStorage
    public let pool: [TrialKey: TrialResult]
    public private(set) var borrowed: [TrialResult] = []
    /// Every key the study obtained, from either layer.
    public private(set) var visited: Set<TrialKey> = []
    /// Trials saved through this object (trained by this process).
    public private(set) var saved = 0

    public init(own: TrialStorage, pool: [TrialKey: TrialResult]) {
        self.own = own
        self.pool = pool
    }

    public func result(for key: TrialKey) -> TrialResult? {
        if let r = own.result(for: key) {
            visited.insert(key)
            return r
        }
        guard let r = pool[key] else { return nil }
        if visited.insert(key).inserted { borrowed.append(r) }
        return r
    }

    public func save(_ result: TrialResult) throws {
        try own.save(result)
        visited.insert(result.key)
        saved += 1
    }

    /// The union of both layers, ordered by key.
    public var results: [TrialResult] {
        var byKey = pool
        for r in own.results { byKey[r.key] = r }
        return byKey.values.sorted { $0.key < $1.key }
    }
}
