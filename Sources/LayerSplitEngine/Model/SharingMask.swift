/// How one unit is held across tasks.
public enum SharingState: Character, Sendable, CaseIterable, Codable {
    /// One copy for all tasks.
    case shared = "S"
    /// One copy per task, each initialised from the same (pretrained) weights.
    case specific = "T"
    /// The shared copy plus a small per-task adapter (parallel residual adapters, Rebuffi et al. 2018): a rank-r
    /// product beside a linear unit, a 1x1 convolution beside each 3x3 one, with per-task BatchNorm
    /// (`AdapterUnit`).
    case adapter = "A"

    public var letter: Character { rawValue }
    public var name: String {
        switch self {
        case .shared: "shared"
        case .specific: "task-specific"
        case .adapter: "adapter"
        }
    }
}

/// A sharing state for each unit, input to output.
///
/// Written everywhere (CLI, CSV, HDF5, plots) as one letter per unit: `S` shared, `T` task-specific, `A`
/// adapter. `TTSS` makes the two bottom units of a four-unit model task-specific. Spaces are ignored when
/// parsing, so `T T S S` reads the same.
public struct SharingMask: Hashable, Sendable, CustomStringConvertible, Codable {
    public var states: [SharingState]

    public init(_ states: [SharingState]) { self.states = states }

    /// Parses a mask string; throws naming the bad letter.
    public init(parsing text: String) throws {
        var states: [SharingState] = []
        for ch in text where !ch.isWhitespace {
            guard let s = SharingState(rawValue: Character(ch.uppercased())) else {
                throw EngineError.maskLetter(mask: text, letter: ch)
            }
            states.append(s)
        }
        self.states = states
    }

    /// Every unit in the same state.
    public static func all(_ state: SharingState, units: Int) -> SharingMask {
        SharingMask(Array(repeating: state, count: units))
    }

    public var count: Int { states.count }
    public subscript(i: Int) -> SharingState { states[i] }
    public var description: String { String(states.map(\.letter)) }

    /// Throws unless the mask has one letter per unit.
    public func validate(units: Int) throws {
        guard states.count == units else { throw EngineError.maskLength(mask: description, units: units) }
    }

    public init(from decoder: Decoder) throws {
        try self.init(parsing: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
