/// Updates parameters from their gradients. One instance serves one model for its whole training.
public protocol Optimizer: AnyObject {
    /// The parameters it updates, in a fixed order; state is kept per parameter in the same order.
    var parameters: [Parameter] { get }
    /// Applies one update with learning rate `lr` to every parameter from its current `grad`.
    func step(lr: Float)
}
