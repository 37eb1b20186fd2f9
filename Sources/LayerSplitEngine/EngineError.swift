/// Everything the engine refuses, each message naming what and where, and how to fix it where that is clear.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    /// A tensor reached a layer with a shape it cannot take.
    case shapeMismatch(layer: String, expected: String, got: [Int])
    /// A mask whose length is not the number of units.
    case maskLength(mask: String, units: Int)
    /// A mask letter that is not a sharing state.
    case maskLetter(mask: String, letter: Character)
    /// A unit kind the engine does not have.
    case unknownUnitKind(String)
    /// A model description that cannot be built.
    case invalidModel(String)
    /// A batch that does not fit the model (wrong number of tasks, labels out of range, ...).
    case invalidBatch(String)
    /// The loss became NaN or infinite.
    case nonFiniteLoss(step: Int, task: Int, value: Float)
    /// Weights that do not fit the model (a missing key or a shape that differs).
    case weightMismatch(key: String, expected: [Int], got: [Int]?)
    /// Text that is not a parameter key (`ParameterKey(parsing:)`).
    case invalidParameterKey(key: String, why: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(layer, expected, got):
            return "shape mismatch in \(layer): expected input \(expected), got \(got)"
        case let .maskLength(mask, units):
            return "mask '\(mask)' has \(mask.filter { !$0.isWhitespace }.count) letters but the model has \(units) units; give one letter per unit, input to output"
        case let .maskLetter(mask, letter):
            return "mask '\(mask)': '\(letter)' is not a sharing state; use S (shared), T (task-specific) or A (adapter)"
        case let .unknownUnitKind(kind):
            return "unknown unit kind '\(kind)'; known kinds: \(UnitSpec.Kind.names.joined(separator: ", "))"
        case let .invalidModel(why):
            return "invalid model: \(why)"
        case let .invalidBatch(why):
            return "invalid batch: \(why)"
        case let .nonFiniteLoss(step, task, value):
            return "loss of task \(task) became \(value) at step \(step); lower the learning rate or check the data for NaN/Inf"
        case let .weightMismatch(key, expected, got):
            if let got { return "weights for '\(key)' have shape \(got) but the model expects \(expected)" }
            return "weights for '\(key)' (shape \(expected)) are missing"
        case let .invalidParameterKey(key, why):
            return "'\(key)' is not a parameter key: \(why)"
        }
    }
}
