import LayerSplitEngine

/// Structured subsets of masks (DESIGN.md: families), and the family a mask belongs to.
public enum MaskFamily: String, Hashable, Sendable, Codable, CaseIterable {
    case allShared = "all-shared"
    case allSpecific = "all-specific"
    case bottom = "bottom-k"
    case top = "top-k"
    case adaptersEverywhere = "adapters-everywhere"
    case other

    /// The family of `mask`. A mask that is both bottom-k and top-k (all-shared, all-specific) gets the
    /// more specific name.
    public static func of(_ mask: SharingMask) -> MaskFamily {
        let s = mask.states
        if s.allSatisfy({ $0 == .shared }) { return .allShared }
        if s.allSatisfy({ $0 == .specific }) { return .allSpecific }
        if s.allSatisfy({ $0 == .adapter }) { return .adaptersEverywhere }
        let k = s.prefix { $0 == .specific }.count
        if k > 0 && s.dropFirst(k).allSatisfy({ $0 == .shared }) { return .bottom }
        let j = s.reversed().prefix { $0 == .specific }.count
        if j > 0 && s.dropLast(j).allSatisfy({ $0 == .shared }) { return .top }
        return .other
    }

    /// `bottom-2`, `top-1`, `all-shared`, ...: the family with its k where it has one.
    public static func label(_ mask: SharingMask) -> String {
        switch of(mask) {
        case .bottom: "bottom-\(mask.states.prefix { $0 == .specific }.count)"
        case .top: "top-\(mask.states.reversed().prefix { $0 == .specific }.count)"
        case let f: f.rawValue
        }
    }

    /// Units 1...k specific, the rest shared.
    public static func bottom(_ k: Int, units: Int) -> SharingMask {
        SharingMask((0..<units).map { $0 < k ? .specific : .shared })
    }

    /// Units L-k+1...L specific, the rest shared.
    public static func top(_ k: Int, units: Int) -> SharingMask {
        SharingMask((0..<units).map { $0 >= units - k ? .specific : .shared })
    }

    /// all-shared, bottom-k and top-k for k = 1...L-1, all-specific, and adapters everywhere when adapters are
    /// allowed: the structured comparison of Zhang et al.
    public static func standardMasks(units: Int, adapters: Bool = false) -> [SharingMask] {
        var out: [SharingMask] = [.all(.shared, units: units)]
        for k in 1..<max(units, 1) { out.append(bottom(k, units: units)) }
        for k in 1..<max(units, 1) { out.append(top(k, units: units)) }
        out.append(.all(.specific, units: units))
        if adapters { out.append(.all(.adapter, units: units)) }
        var seen = Set<SharingMask>()
        return out.filter { seen.insert($0).inserted }
    }
}
