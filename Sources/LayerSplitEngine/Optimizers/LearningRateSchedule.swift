#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The learning rate as a function of the step (0-based), with an optional linear warm-up.
public enum LearningRateSchedule: Hashable, Sendable, Codable {
    /// The same rate throughout.
    case constant(Float)
    /// `base × gamma^⌊step / every⌋`.
    case step(base: Float, every: Int, gamma: Float)
    /// Cosine annealing (Loshchilov & Hutter 2017) from `base` to `minimum` over `totalSteps`.
    case cosine(base: Float, totalSteps: Int, minimum: Float)

    public func rate(at step: Int, warmup: Int = 0) -> Float {
        let r: Float
        switch self {
        case let .constant(lr): r = lr
        case let .step(base, every, gamma): r = base * powf(gamma, Float(step / Swift.max(every, 1)))
        case let .cosine(base, total, minimum):
            let progress = Float(Swift.min(step, total)) / Float(Swift.max(total, 1))
            r = minimum + (base - minimum) * 0.5 * (1 + cosf(Float.pi * progress))
        }
        if warmup > 0 && step < warmup { return r * Float(step + 1) / Float(warmup) }
        return r
    }
}
