import CBLAS
import Foundation
import Synchronization

/// The engine's only door to matrix arithmetic: every product goes through OpenBLAS's `cblas_sgemm`.
///
/// All matrices are row-major. `Threads` decides how many OpenBLAS threads a call may use.
public enum BLAS {
    /// C = alpha * op(A) * op(B) + beta * C, with op(A) m x k, op(B) k x n, C m x n, all row-major.
    @inline(__always)
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        if FlopCounter.enabled { FlopCounter.count += 2 * m * n * k }
        if k == 0 {
            // BLAS leaves C untouched for k == 0 only when beta == 1; make the result well-defined.
            if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
                    beta, c, blasint(ldc))
    }

    /// y = alpha * op(A) * x + beta * y, A row-major m x n.
    @inline(__always)
    public static func gemv(
        trans: Bool = false, m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>
    ) {
        if m == 0 || n == 0 {
            // An empty sum: y = beta·y (BLAS would leave y untouched), e.g. the bias gradient of an empty batch.
            let len = trans ? n : m
            if beta == 0 { y.update(repeating: 0, count: len) } else if beta != 1 { for i in 0..<len { y[i] *= beta } }
            return
        }
        cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, blasint(m), blasint(n), alpha, a,
                    blasint(lda), x, 1, beta, y, 1)
    }

    /// The name of the OpenBLAS kernel in use (for example `Haswell` or `SkylakeX`).
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// OpenBLAS's build configuration string.
    public static var config: String {
        guard let p = openblas_get_config() else { return "unknown" }
        return String(cString: p)
    }
}

/// How many threads the engine uses, and how it spends them.
///
/// Large GEMMs (a shared unit processing every task's rows) use all threads inside OpenBLAS. Several small
/// independent GEMMs (the per-task copies of a specific unit) run side by side instead: one task per thread,
/// each with single-threaded OpenBLAS, which keeps the threads busy where splitting a small GEMM would not.
/// Layers split their own work the same way (a convolution's im2col chunks, BatchNorm's rows, elementwise
/// passes): into `parallelism` parts, statically, so that a given thread count always adds the same partial
/// results in the same order.
///
/// Only one `forEach` spreads over the threads at a time: a `forEach` called from inside an item (a layer
/// splitting its work while it runs as one task's copy) runs its items inline on the current thread, and so
/// does one called from another thread while the pool is busy.
public enum Threads {
    nonisolated(unsafe) private static var current = 1
    nonisolated(unsafe) private static var pool: WorkerPool?
    /// Whether a `forEach` holds the pool (claimed with a compare-and-swap, so it never blocks).
    private static let busy = Atomic<Bool>(false)

    /// The engine's thread count.
    public static var count: Int { current }

    /// How many parts a layer should split its work into here: the thread count at the top level, and 1 inside
    /// a `forEach` item (the other threads are busy with the other items) or with one thread.
    public static var parallelism: Int {
        guard current > 1, pool != nil, !busy.load(ordering: .relaxed) else { return 1 }
        return current
    }

    /// How many times `forEach` has changed OpenBLAS's thread count (two per spread call with BLAS inside).
    /// The allocation tests allow one heap allocation per change at several threads: OpenBLAS may allocate
    /// when its thread count changes, and the closure form `forEach(_:_:)` boxes its closure (one allocation
    /// per spread call). The layers' own loops (`ParallelItems`) allocate nothing.
    nonisolated(unsafe) public private(set) static var blasThreadChanges = 0

    /// Sets the engine's thread count (at least 1) and OpenBLAS's to match.
    public static func set(_ n: Int) {
        current = Swift.max(1, n)
        openblas_set_num_threads(Int32(current))
        if current > 1 && (pool?.workers ?? 0) < current - 1 { pool = WorkerPool(workers: current - 1) }
    }

    /// Runs `body(i)` for `i` in `0..<n`, spread over the engine's threads, with OpenBLAS single-threaded inside.
    ///
    /// Each `i` must touch disjoint memory. With one thread, or one item, it is a plain loop and OpenBLAS keeps
    /// every thread; called from inside another `forEach`'s item it is a plain loop too. Which thread runs an
    /// item never changes its arithmetic, so results are deterministic. The worker threads are started once,
    /// by `set`; handing a closure to them costs one small allocation per call (Swift boxes a non-escaping
    /// closure that another thread calls), which the allocation tests count in with `blasThreadChanges`.
    /// Loops run every step inside layers use `forEach(_:blas:_:)` with `ParallelItems`, which allocates nothing.
    public static func forEach(_ n: Int, _ body: (Int) -> Void) {
        guard current > 1, n > 1, pool != nil, !busy.load(ordering: .relaxed) else {
            for i in 0..<n { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in forEach(n, blas: true, ClosureItems(body: body)) }
    }

    /// Runs `items.item(i)` for `i` in `0..<n` like `forEach(_:_:)`, without allocating. With `blas: false`
    /// (elementwise loops, whose items must not call BLAS) OpenBLAS's thread count is left alone, which saves
    /// two calls into OpenBLAS and its bookkeeping.
    public static func forEach<Items: ParallelItems>(_ n: Int, blas: Bool, _ items: Items) {
        guard current > 1, n > 1, let pool,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else {
            for i in 0..<n { items.item(i) }
            return
        }
        if blas { openblas_set_num_threads(1) }
        withUnsafePointer(to: items) { p in
            pool.run(n, participants: Swift.min(current, n), items: UnsafeRawPointer(p), type: Items.self)
        }
        if blas {
            openblas_set_num_threads(Int32(current))
            blasThreadChanges &+= 2
        }
        busy.store(false, ordering: .releasing)
    }

    /// The number of parts to split `count` units of work into: `parallelism`, but no more than leaves each
    /// part `minimum` units (waking a thread costs some microseconds), and at least 1.
    public static func parts(_ count: Int, minimum: Int) -> Int {
        let p = parallelism
        if p == 1 { return 1 }
        return Swift.max(1, Swift.min(p, count / Swift.max(minimum, 1)))
    }

    /// Part `k` of `parts` of `0..<count`: contiguous, in order, sizes differing by at most one.
    @inline(__always)
    public static func part(_ k: Int, of parts: Int, _ count: Int) -> Range<Int> {
        (k * count / parts)..<((k + 1) * count / parts)
    }
}

/// The body of a parallel loop for `Threads.forEach(_:blas:_:)`: usually a struct of the pointers and sizes
/// the loop needs, whose `item(i)` does item `i` (each item on memory of its own). Unlike a closure, handing
/// it to the worker threads allocates nothing.
public protocol ParallelItems {
    func item(_ i: Int)
}

extension ParallelItems {
    /// Item `i` of the loop stored at `items` (a `Self`), for the worker threads.
    fileprivate static func run(_ items: UnsafeRawPointer, _ i: Int) {
        items.assumingMemoryBound(to: Self.self).pointee.item(i)
    }
}

/// A closure as `ParallelItems` (for `Threads.forEach(_:_:)`).
private struct ClosureItems: ParallelItems {
    let body: (Int) -> Void
    func item(_ i: Int) { body(i) }
}

/// Persistent worker threads that share out the items of a loop with the calling thread.
///
/// Dispatch's `concurrentPerform` allocates on every call, and a training step makes several; these threads
/// are made once and woken through a mutex and condition variable. Items are claimed in order from a shared
/// counter, so the split adapts to items of unequal cost. A round's loop is handed over as a pointer to the
/// caller's `ParallelItems` value and its type, which the caller keeps alive until every item is done.
final class WorkerPool: @unchecked Sendable {
    let workers: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let done = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var generation = 0
    private var active = 0
    private var enlisted = 0
    private var items: UnsafeRawPointer?
    private var itemsType: (any ParallelItems.Type)?
    private var itemCount = 0
    private var nextItem = 0

    init(workers: Int) {
        self.workers = workers
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
        for _ in 0..<workers {
            let thread = Thread { [unowned self] in self.loop() }
            thread.start()
        }
    }

    /// Runs the items on the caller and up to `participants - 1` workers; returns when all are done.
    func run(_ n: Int, participants: Int, items: UnsafeRawPointer, type: any ParallelItems.Type) {
        pthread_mutex_lock(mutex)
        self.items = items
        itemsType = type
        itemCount = n
        nextItem = 0
        enlisted = Swift.min(participants - 1, workers)
        active = enlisted
        generation &+= 1
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        drain(items, type)
        pthread_mutex_lock(mutex)
        while active > 0 { pthread_cond_wait(done, mutex) }
        self.items = nil
        itemsType = nil
        pthread_mutex_unlock(mutex)
    }

    /// Claims and runs items until none are left.
    private func drain(_ items: UnsafeRawPointer, _ type: any ParallelItems.Type) {
        while true {
            pthread_mutex_lock(mutex)
            let i = nextItem
            nextItem += 1
            pthread_mutex_unlock(mutex)
            if i >= itemCount { return }
            type.run(items, i)
        }
    }

    private func loop() {
        var seen = 0
        while true {
            pthread_mutex_lock(mutex)
            while generation == seen || enlisted == 0 {
                if generation != seen { seen = generation }   // a round this worker is not enlisted in
                pthread_cond_wait(wake, mutex)
            }
            seen = generation
            enlisted -= 1
            let items = self.items!, type = itemsType!
            pthread_mutex_unlock(mutex)
            drain(items, type)
            pthread_mutex_lock(mutex)
            active -= 1
            if active == 0 { pthread_cond_signal(done) }
            pthread_mutex_unlock(mutex)
        }
    }
}

/// Counts the floating-point operations of GEMM calls, for benchmarks (the step's FLOPs over its time).
///
/// Off by default; when on it is not thread-safe, so count with `Threads.set(1)`.
public enum FlopCounter {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public static var count = 0

    /// The GEMM FLOPs `body` performs.
    public static func measure(_ body: () throws -> Void) rethrows -> Int {
        count = 0
        enabled = true
        defer { enabled = false }
        try body()
        return count
    }
}

/// Small vectorised loops for the layers' elementwise passes.
///
/// The engine is compiled for baseline x86-64 (SSE2), and the auto-vectoriser gives up on most of these
/// loops: a select whose loaded operand is only read on one side (`y > 0 ? dy : 0`) becomes a branch, and
/// loops that write one pointer while reading several need more run-time alias checks than it will emit. So
/// the loops are written with `SIMD4<Float>` (one SSE register) and a scalar tail.
enum Vector {
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> SIMD4<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
    }

    @inline(__always)
    static func load(_ p: UnsafeMutablePointer<Float>) -> SIMD4<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self)
    }

    @inline(__always)
    static func store(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self)
    }

    @inline(__always)
    static func loadDouble(_ p: UnsafeMutablePointer<Double>) -> SIMD4<Double> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Double>.self)
    }

    @inline(__always)
    static func storeDouble(_ v: SIMD4<Double>, _ p: UnsafeMutablePointer<Double>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Double>.self)
    }

    /// max(v, 0) lane by lane, as `v > 0 ? v : 0`.
    @inline(__always)
    static func relu(_ v: SIMD4<Float>) -> SIMD4<Float> {
        v.replacing(with: 0, where: v .<= 0)
    }

    /// d[i] = s[i] for i in 0..<n.
    @inline(__always)
    static func copy(_ d: UnsafeMutablePointer<Float>, _ s: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 4 <= n {
            store(load(s + i), d + i)
            i += 4
        }
        while i < n {
            d[i] = s[i]
            i += 1
        }
    }

    /// d[i] += s[i] for i in 0..<n.
    @inline(__always)
    static func add(_ d: UnsafeMutablePointer<Float>, _ s: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 4 <= n {
            store(load(d + i) + load(s + i), d + i)
            i += 4
        }
        while i < n {
            d[i] += s[i]
            i += 1
        }
    }

    /// y[i] = max(x[i], 0) for i in range.
    static func relu(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        var i = range.lowerBound
        while i + 4 <= range.upperBound {
            store(relu(load(x + i)), y + i)
            i += 4
        }
        while i < range.upperBound {
            let v = x[i]
            y[i] = v > 0 ? v : 0
            i += 1
        }
    }

    /// dx[i] = y[i] > 0 ? dy[i] : 0 for i in range (the ReLU's backward, from its output).
    static func reluBackward(_ y: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                             _ range: Range<Int>) {
        var i = range.lowerBound
        while i + 4 <= range.upperBound {
            let v = load(dy + i)
            store(v.replacing(with: 0, where: load(y + i) .<= 0), dx + i)
            i += 4
        }
        while i < range.upperBound {
            let v = dy[i]
            dx[i] = y[i] > 0 ? v : 0
            i += 1
        }
    }
}
