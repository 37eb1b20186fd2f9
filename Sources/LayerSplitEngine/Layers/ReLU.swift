/// y = max(x, 0), elementwise. The backward pass reads the saved output: dx = dy where y > 0, else 0.
public final class ReLU: Layer {
    private var output: Tensor?

    public init() {}

    public var namedParameters: [(name: String, parameter: Parameter)] { [] }

    public func outputShape(for input: [Int]) throws -> [Int] { input }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        let xp = x.data, yp = y.data
        for i in 0..<x.count { yp[i] = Swift.max(xp[i], 0) }
        output = y
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        guard let dx, let y = output else { return }
        let yp = y.data, dyp = dy.data, dxp = dx.data
        for i in 0..<dy.count { dxp[i] = yp[i] > 0 ? dyp[i] : 0 }
    }

    public func copy() -> ReLU { ReLU() }
}
