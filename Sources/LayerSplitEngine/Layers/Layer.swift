/// A trainable tensor and its gradient.
///
/// Layers overwrite `grad` in `backward` (they do not accumulate): in LayerSplit's networks every parameter is
/// used exactly once per step, since a task-specific unit has its own parameters per task.
public final class Parameter: @unchecked Sendable {
    public let value: Tensor
    public let grad: Tensor
    /// Whether weight decay applies (weights yes; biases and normalisation scales and shifts no).
    public let decays: Bool

    public init(_ value: Tensor, decays: Bool) {
        self.value = value
        self.grad = Tensor(zeros: value.shape)
        self.decays = decays
    }

    /// A parameter with a copy of this one's value and a fresh gradient.
    public func copy() -> Parameter { Parameter(value.clone(), decays: decays) }
}

/// One step of a network: a forward map and its backward (vector-Jacobian) map.
///
/// Tensors are row-major with the batch outermost. Image tensors are NHWC (`[N, H, W, C]`): one row per
/// example, channels innermost, so a convolution is one GEMM over every pixel of the batch and a Linear layer
/// reads an image row as its flattened features without a copy.
///
/// The caller owns `x` and `y` (and `dy`, `dx`); a layer owns its parameters and scratch buffers. A layer may
/// keep a reference to `x` from `forward` for `backward`, so `x` must not change in between.
public protocol Layer: AnyObject {
    /// The parameters with their names relative to this layer (`weight`, `bias`, `conv1.weight`, ...).
    var namedParameters: [(name: String, parameter: Parameter)] { get }
    /// Non-trained state that is still part of the model (BatchNorm running statistics).
    var namedBuffers: [(name: String, tensor: Tensor)] { get }
    /// The output shape for an input shape (batch dimension included), or an error naming the mismatch.
    func outputShape(for input: [Int]) throws -> [Int]
    /// Computes `y` from `x`. `y` already has `outputShape(for: x.shape)`.
    func forward(_ x: Tensor, into y: Tensor, training: Bool)
    /// Given dL/dy, writes dL/dparameters into each parameter's `grad`, and dL/dx into `dx` unless it is nil
    /// (the first layer of a network needs no input gradient, which saves a GEMM).
    func backward(_ dy: Tensor, dx: Tensor?)
    /// A deep copy: same parameter values, own buffers. Task-specific copies of a unit are made this way.
    func copy() -> Self
}

extension Layer {
    public var namedBuffers: [(name: String, tensor: Tensor)] { [] }
    public var parameters: [Parameter] { namedParameters.map(\.parameter) }
    /// The number of trainable floats.
    public var parameterCount: Int { namedParameters.reduce(0) { $0 + $1.parameter.value.count } }
}

/// Prefixes names, for containers that list their children's parameters.
func prefixed<T>(_ prefix: String, _ items: [(name: String, T)]) -> [(name: String, T)] {
    items.map { (name: prefix + "." + $0.name, $0.1) }
}
