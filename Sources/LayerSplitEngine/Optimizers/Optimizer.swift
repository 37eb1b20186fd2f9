/// Updates parameters from their gradients. One instance serves one model for its whole training.
public protocol Optimizer: AnyObject {
    /// The parameters it updates, in a fixed order; state is kept per parameter in the same order.
    var parameters: [Parameter] { get }
    /// Applies one update with learning rate `lr` to every parameter from its current `grad`.
    func step(lr: Float)
    /// The optimiser's state, for checkpoints: named kinds (SGD `velocity`; Adam `m` and `v`), each one tensor
    /// per parameter in `parameters` order and of its shape. Copying values into them restores the state.
    var stateTensors: [(name: String, tensors: [Tensor])] { get }
    /// The update counter the state depends on (Adam's t, for bias correction); 0 for an optimiser whose update
    /// does not depend on it (SGD). Set it together with `stateTensors` to continue from a checkpoint.
    var stateStep: Int { get set }
}

extension Optimizer {
    /// No state by default.
    public var stateTensors: [(name: String, tensors: [Tensor])] { [] }
    /// No counter by default: reads 0, ignores writes.
    public var stateStep: Int {
        get { 0 }
        set {}
    }
}
