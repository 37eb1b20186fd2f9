/// The key of one tensor of a `MultiTaskModel` (a parameter or a buffer): the unit it belongs to or the
/// heads, the task whose copy it is (if any), and the layer's own dotted name.
///
/// Its text (`description`) is `u01/fc.weight` (shared unit 1), `u01/t2/fc.weight` (task 2's copy of a
/// task-specific unit 1), `u02/t1/adapter.U` (task 1's adapter of an adapter unit 2), `u03/block0.conv1.weight`
/// (a residual unit), `head/t2/weight` (task 2's head). Those strings are a file-format contract: they are the
/// dataset paths under `/weights` in weights files and checkpoints (docs/FORMATS.md), so they must never change.
/// The typed key exists so that the strings are written in one place (`description`) and read in one place
/// (`init(parsing:)`), and so that whoever needs a key's unit or name asks for it instead of matching suffixes.
///
/// Units are 0-based here and 1-based in the text, with at least two digits (`u01`, ..., `u09`, `u10`, `u123`);
/// tasks are 0-based in both (`t0`). Parsing accepts exactly the texts `description` produces, so a key read
/// from a file and written back is the same string.
public struct ParameterKey: Hashable, Sendable, CustomStringConvertible {
    /// What the tensor belongs to.
    public enum Owner: Hashable, Sendable {
        /// Unit `index` (0-based).
        case unit(Int)
        /// The classification heads; a head key always has a task.
        case head
    }

    public let owner: Owner
    /// The task whose copy the tensor is: a task-specific unit's copy, an adapter unit's per-task adapter or
    /// BatchNorm, a head. Nil for a shared unit's tensors and an adapter unit's shared part.
    public let task: Int?
    /// The layer's own name inside the unit or head: `fc.weight`, `block0.conv1.weight`, `adapter.U`, `weight`.
    public let name: String

    /// The key of unit `unit`'s tensor `name`: shared when `task` is nil, else task `task`'s copy.
    public init(unit: Int, task: Int? = nil, name: String) {
        precondition(unit >= 0 && (task ?? 0) >= 0, "ParameterKey: negative unit \(unit) or task \(task ?? 0)")
        precondition(Self.nameProblem(name) == nil, "ParameterKey: bad name '\(name)'")
        self.owner = .unit(unit)
        self.task = task
        self.name = name
    }

    /// The key of task `task`'s head tensor `name` (`weight`, `bias`).
    public init(head task: Int, name: String) {
        precondition(task >= 0, "ParameterKey: negative task \(task)")
        precondition(Self.nameProblem(name) == nil, "ParameterKey: bad name '\(name)'")
        self.owner = .head
        self.task = task
        self.name = name
    }

    /// The unit's index (0-based), nil for heads.
    public var unit: Int? {
        if case let .unit(u) = owner { return u }
        return nil
    }

    public var isHead: Bool { owner == .head }

    /// The same tensor of the shared unit: `u02/t1/fc.weight` → `u02/fc.weight`. Nil for heads and for keys
    /// that have no task. Pretrained (all-shared) weights are looked up this way for task copies.
    public var sharedKey: ParameterKey? {
        guard let unit, task != nil else { return nil }
        return ParameterKey(unit: unit, name: name)
    }

    public var description: String {
        let first = switch owner {
        case let .unit(u): Self.unitSegment(u)
        case .head: "head"
        }
        guard let task else { return first + "/" + name }
        return first + "/" + Self.taskSegment(task) + "/" + name
    }

    /// `u01`, `u02`, ..., `u10`: the text of unit `index` (0-based).
    public static func unitSegment(_ index: Int) -> String {
        index + 1 < 10 ? "u0\(index + 1)" : "u\(index + 1)"
    }

    /// `t0`, `t1`, ...: the text of task `index`. Also the prefix of an adapter unit's per-task names.
    public static func taskSegment(_ index: Int) -> String { "t\(index)" }

    // MARK: - Parsing

    /// Reads a key from its text, accepting exactly what `description` writes: `u<NN>/<name>`,
    /// `u<NN>/t<k>/<name>` or `head/t<k>/<name>`, where a name is dotted parts of letters, digits and `_`.
    /// Throws `EngineError.invalidParameterKey` saying what is wrong otherwise.
    public init(parsing text: String) throws {
        func fail(_ why: String) -> EngineError { .invalidParameterKey(key: text, why: why) }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3 else {
            throw fail("expected u<unit>/<name>, u<unit>/t<task>/<name> or head/t<task>/<name>")
        }
        var task: Int?
        if parts.count == 3 {
            guard let t = Self.taskIndex(parts[1]) else {
                throw fail("'\(parts[1])' is not a task (t0, t1, ...)")
            }
            task = t
        } else if Self.taskIndex(parts[1]) != nil {
            throw fail("a task without a tensor name")
        }
        let name = parts[parts.count - 1]
        if let why = Self.nameProblem(name) { throw fail(why) }
        if parts[0] == "head" {
            guard let task else { throw fail("a head key needs a task: head/t<task>/<name>") }
            self.init(head: task, name: name)
        } else if let unit = Self.unitIndex(parts[0]) {
            self.init(unit: unit, task: task, name: name)
        } else {
            throw fail("'\(parts[0])' is neither a unit (u01, u02, ...) nor 'head'")
        }
    }

    /// `u03` → 2; nil unless the text is exactly what `unitSegment` writes.
    private static func unitIndex(_ text: String) -> Int? {
        guard text.first == "u", let n = decimal(text.dropFirst()), n >= 1, unitSegment(n - 1) == text else { return nil }
        return n - 1
    }

    /// `t2` → 2; nil unless the text is exactly what `taskSegment` writes.
    private static func taskIndex(_ text: String) -> Int? {
        guard text.first == "t", let n = decimal(text.dropFirst()), taskSegment(n) == text else { return nil }
        return n
    }

    private static func decimal(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(text)
    }

    /// Why `name` cannot be a tensor name, or nil: it must be non-empty dotted parts of ASCII letters, digits
    /// and `_` (no `/`, which would make a deeper HDF5 path).
    private static func nameProblem(_ name: String) -> String? {
        guard !name.isEmpty else { return "no tensor name" }
        let ok = name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
        }
        return ok ? nil : "'\(name)' is not a tensor name (dotted parts of letters, digits and _)"
    }
}
