/// Layers applied in order. Owns the intermediate activations and their gradients, sized on the first step
/// and reused afterwards.
public final class Sequential: Layer {
    public let layers: [Layer]
    /// The name of each layer in parameter keys (`fc`, `relu`, `conv1`, ...).
    public let names: [String]
    private var activations: [Tensor] = []
    private var gradients: [Tensor] = []
    private var plannedInput: [Int] = []

    /// Layers named by their position (`0`, `1`, ...) unless `names` is given.
    public init(_ layers: [Layer], names: [String]? = nil) {
        precondition(names == nil || names!.count == layers.count, "one name per layer")
        self.layers = layers
        self.names = names ?? layers.indices.map(String.init)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        zip(names, layers).flatMap { prefixed($0, $1.namedParameters) }
    }

    public var namedBuffers: [(name: String, tensor: Tensor)] {
        zip(names, layers).flatMap { prefixed($0, $1.namedBuffers) }
    }

    public func outputShape(for input: [Int]) throws -> [Int] {
        try layers.reduce(input) { try $1.outputShape(for: $0) }
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        if x.shape != plannedInput { plan(for: x.shape) }
        var current = x
        for (i, layer) in layers.enumerated() {
            let out = i == layers.count - 1 ? y : activations[i]
            layer.forward(current, into: out, training: training)
            current = out
        }
    }

    /// Sizes the intermediate buffers for an input shape. Runs on the first step and whenever the batch shape
    /// changes, never in a steady-state step (building shape arrays allocates).
    private func plan(for input: [Int]) {
        let inner = max(layers.count - 1, 0)
        if activations.count != inner {
            activations = (0..<inner).map { _ in Tensor(zeros: [0]) }
            gradients = (0..<inner).map { _ in Tensor(zeros: [0]) }
        }
        var shape = input
        for i in 0..<inner {
            // Shapes were validated when the model was built; a failure here is a programming error.
            shape = try! layers[i].outputShape(for: shape)
            activations[i].resize(shape)
            gradients[i].resize(shape)
        }
        plannedInput = input
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        var upstream = dy
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            let target: Tensor?
            if i == 0 {
                target = dx
            } else {
                target = gradients[i - 1]
            }
            layers[i].backward(upstream, dx: target)
            if let target { upstream = target }
        }
    }

    public func copy() -> Sequential { Sequential(layers.map { $0.copy() }, names: names) }
}
