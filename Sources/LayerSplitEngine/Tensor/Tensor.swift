/// A contiguous, row-major float32 tensor.
///
/// `Tensor` is a class, not a value type, on purpose: the training step must not allocate, so every layer owns
/// its output and scratch buffers and overwrites them in place each step. Reference semantics make that
/// explicit (a value type with copy-on-write would silently copy whenever a second reference is alive).
///
/// A tensor either owns its storage (allocated 64-byte aligned, freed in `deinit`) or is a *view* of a range of
/// rows of another tensor (it keeps its parent alive). Views are how a task-specific unit hands each task's
/// rows to that task's copy without copying.
public final class Tensor: @unchecked Sendable {
    /// The shape, outermost dimension first. Its product is `count`.
    public private(set) var shape: [Int]
    /// The number of elements.
    public private(set) var count: Int
    /// The first element. Valid for `count` elements.
    public private(set) var data: UnsafeMutablePointer<Float>
    private let owner: Tensor?
    private var capacity: Int

    /// A zero-filled tensor of the given shape.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.capacity = Swift.max(count, 1)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<Float>.stride, alignment: 64)
        self.data = raw.bindMemory(to: Float.self, capacity: capacity)
        self.data.initialize(repeating: 0, count: capacity)
        self.owner = nil
    }

    /// A tensor holding a copy of `values`, which must have `shape`'s product of elements.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(zeros: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// A view of rows `rows` of `parent` (the outermost dimension), sharing its storage.
    public init(rowsOf parent: Tensor, _ rows: Range<Int>) {
        precondition(!parent.shape.isEmpty && rows.lowerBound >= 0 && rows.upperBound <= parent.shape[0],
                     "rows \(rows) out of range for shape \(parent.shape)")
        let rowSize = parent.shape.dropFirst().reduce(1, *)
        self.shape = [rows.count] + parent.shape.dropFirst()
        self.count = rows.count * rowSize
        self.capacity = count
        self.data = parent.data + rows.lowerBound * rowSize
        self.owner = parent
    }

    deinit {
        if owner == nil { UnsafeMutableRawPointer(data).deallocate() }
    }

    /// Whether this tensor is a view of another one's storage.
    public var isView: Bool { owner != nil }

    /// Elements per row of the outermost dimension.
    public var rowSize: Int { shape.dropFirst().reduce(1, *) }

    /// Reinterprets the same elements with another shape of the same element count (no copy).
    public func reshape(_ newShape: [Int]) {
        let n = newShape.reduce(1, *)
        precondition(n == count, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        shape = newShape
    }

    /// Makes this owning tensor hold `newShape`, reusing its storage when it is large enough.
    ///
    /// Contents are unspecified afterwards. Layers call this at the top of every step; after the first step it
    /// never allocates, because the batch shape does not change.
    public func resize(_ newShape: [Int]) {
        let n = newShape.reduce(1, *)
        if n > capacity {
            precondition(owner == nil, "cannot grow a view")
            UnsafeMutableRawPointer(data).deallocate()
            capacity = n
            let raw = UnsafeMutableRawPointer.allocate(byteCount: n * MemoryLayout<Float>.stride, alignment: 64)
            data = raw.bindMemory(to: Float.self, capacity: n)
            data.initialize(repeating: 0, count: n)
        }
        shape = newShape
        count = n
    }

    /// The elements as a Swift array (a copy).
    public var values: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    /// Sets every element to `value`.
    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    /// Copies `other`'s elements, which must be as many.
    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy of \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    /// A new owning tensor with the same shape and elements.
    public func clone() -> Tensor {
        let t = Tensor(zeros: shape)
        t.copy(from: self)
        return t
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
}
