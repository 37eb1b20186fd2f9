/// y = max(x, 0), elementwise. The backward pass reads the saved output: dx = dy where y > 0, else 0.
///
/// Both passes are vectorised selects (`Vector`) split over the threads by element ranges.
public final class ReLU: Layer {
    private var output: Tensor?

    public init() {}

    public var namedParameters: [(name: String, parameter: Parameter)] { [] }

    public func outputShape(for input: [Int]) throws -> [Int] { input }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        let pass = ReLUPass(input: UnsafePointer(x.data), mask: nil, output: y.data, count: x.count)
        Threads.forEach(pass.parts, blas: false, pass)
        output = y
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        guard let dx, let y = output else { return }
        let pass = ReLUPass(input: UnsafePointer(dy.data), mask: UnsafePointer(y.data), output: dx.data, count: dy.count)
        Threads.forEach(pass.parts, blas: false, pass)
    }

    public func copy() -> ReLU { ReLU() }
}

/// output = max(input, 0) (forward), or input where mask > 0, else 0 (backward), part by part.
private struct ReLUPass: ParallelItems {
    let input: UnsafePointer<Float>
    let mask: UnsafePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    let count: Int
    let parts: Int

    init(input: UnsafePointer<Float>, mask: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>, count: Int) {
        self.input = input
        self.mask = mask
        self.output = output
        self.count = count
        parts = Threads.parts(count, minimum: 1 << 15)
    }

    func item(_ k: Int) {
        let range = Threads.part(k, of: parts, count)
        if let mask { Vector.reluBackward(mask, input, output, range) } else { Vector.relu(input, output, range) }
    }
}
