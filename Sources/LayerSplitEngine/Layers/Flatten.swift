/// [N, d₁, …, d_k] → [N, d₁·…·d_k], the same row-major elements.
///
/// Row-major storage makes this a relabelling, but the caller owns `y` with its own storage, so the elements
/// are copied (forward) and copied back (backward, dx = dy). Linear already reads any [N, ...] input as
/// flattened; Flatten is for models that say so explicitly, as PyTorch's `nn.Flatten` does.
public final class Flatten: Layer {
    public init() {}

    public var namedParameters: [(name: String, parameter: Parameter)] { [] }

    public func outputShape(for input: [Int]) throws -> [Int] {
        guard !input.isEmpty else {
            throw EngineError.shapeMismatch(layer: "Flatten", expected: "[N, ...]", got: input)
        }
        return [input[0], input.dropFirst().reduce(1, *)]
    }

    public func forward(_ x: Tensor, into y: Tensor, training: Bool) {
        y.data.update(from: x.data, count: x.count)
    }

    public func backward(_ dy: Tensor, dx: Tensor?) {
        dx?.data.update(from: dy.data, count: dy.count)
    }

    public func copy() -> Flatten { Flatten() }
}
