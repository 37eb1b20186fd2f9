/// A label function: how a task relabels the examples of its source (the multi-task setting — one input set,
/// several label functions — where shared bottom units and task-specific tops are the usual answer).
public enum LabelFunction: Hashable, Sendable, CustomStringConvertible {
    /// The labels as stored.
    case identity
    /// Only the examples of these source classes, relabelled `0..<k` in the order listed.
    case subset([Int])
    /// New label = the index of the group holding the source class (for example Fashion-MNIST's tops
    /// `[0, 2, 4, 6]`, bottoms-and-dresses `[1, 3]`, footwear `[5, 7, 9]`, bags `[8]`). Groups are disjoint; the
    /// examples of a class in no group are dropped.
    case groups([[Int]])
    /// Source label modulo 2 (even 0, odd 1).
    case parity

    /// The names used in a search space's `labels:` field.
    public static let names = ["subset", "groups", "parity"]

    public var description: String {
        switch self {
        case .identity: "as stored"
        case let .subset(c): "subset \(c)"
        case let .groups(g): "groups \(g)"
        case .parity: "parity"
        }
    }

    /// For each source class, its new label, or nil when its examples are dropped. Throws when a class is out of
    /// range or repeated, or fewer than 2 classes would remain.
    public func mapping(sourceClasses: Int) throws -> [Int32?] {
        var map = [Int32?](repeating: nil, count: sourceClasses)
        func place(_ c: Int, _ label: Int) throws {
            guard c >= 0 && c < sourceClasses else {
                throw DataError.invalid("class \(c) is not a class of the source, whose labels are 0..<\(sourceClasses)")
            }
            guard map[c] == nil else { throw DataError.invalid("class \(c) is listed twice") }
            map[c] = Int32(label)
        }
        switch self {
        case .identity:
            for c in 0..<sourceClasses { map[c] = Int32(c) }
        case let .subset(classes):
            for (k, c) in classes.enumerated() { try place(c, k) }
        case let .groups(groups):
            for (k, g) in groups.enumerated() {
                guard !g.isEmpty else { throw DataError.invalid("group \(k) is empty") }
                for c in g { try place(c, k) }
            }
        case .parity:
            for c in 0..<sourceClasses { map[c] = Int32(c % 2) }
        }
        let k = Set(map.compactMap { $0 }).count
        guard k >= 2 else { throw DataError.invalid("'\(self)' leaves \(k) class\(k == 1 ? "" : "es"); a task needs at least 2") }
        return map
    }

    /// The number of classes after relabelling `sourceClasses` classes.
    public func outputClasses(sourceClasses: Int) throws -> Int {
        Int(try mapping(sourceClasses: sourceClasses).compactMap { $0 }.max() ?? -1) + 1
    }

    /// `set` relabelled, without the dropped examples (the others keep their order).
    public func apply(to set: LabeledSet) throws -> LabeledSet {
        if self == .identity { return set }
        let map = try mapping(sourceClasses: set.classes)
        let classes = Int(map.compactMap { $0 }.max() ?? -1) + 1
        let keep = set.y.indices.filter { map[Int(set.y[$0])] != nil }
        var out = keep.count == set.count ? set : set.subset(keep)
        out.y = out.y.map { map[Int($0)]! }
        out.classes = classes
        return out
    }
}
