/// y = max(x, 0), elementwise. The backward pass reads the saved output: dx = dy where y > 0, else 0.
///
/// Both passes are vectorised selects (`Vector`) split over the threads (`Threads.forRanges`).
public final class ReLU: Layer {
    private var output: Tensor?

    public init() {}

    public var namedParameters: [(name: String, parameter: Parameter)] { [] }

    public func outputShape(for input: [Int]) throws -> [Int] { input }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        let xp = UnsafePointer(x.data), yp = y.data
        Threads.forRanges(x.count) { r in Vector.relu(xp, yp, r) }
        output = y
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        guard let dx, let y = output else { return }
        let yp = UnsafePointer(y.data), dyp = UnsafePointer(dy.data), dxp = dx.data
        Threads.forRanges(dy.count) { r in Vector.reluBackward(yp, dyp, dxp, r) }
    }

    public func copy() -> ReLU { ReLU() }
}
