/// The Pareto front of (fewer stored parameters, higher accuracy).
///
/// A point is on the front when no other point has at most its parameters and at least its accuracy with
/// one of the two strictly better. Exact ties (same parameters and accuracy) do not dominate each other, so
/// all of them stay on the front.
public enum ParetoFront {
    /// Indices of the front's points, ordered by parameters ascending (then accuracy descending, then index).
    ///
    /// - Complexity: O(n log n): sort by parameters, then one sweep keeping the best accuracy so far.
    public static func indices(params: [Int], accuracy: [Double]) -> [Int] {
        precondition(params.count == accuracy.count)
        let order = params.indices.sorted {
            (params[$0], -accuracy[$0], $0) < (params[$1], -accuracy[$1], $1)
        }
        var front: [Int] = []
        var best = -Double.infinity        // best accuracy among strictly smaller parameter counts
        var i = 0
        while i < order.count {
            // One group of equal parameter counts: its best accuracy competes with smaller models only.
            var j = i
            while j < order.count && params[order[j]] == params[order[i]] { j += 1 }
            let groupBest = accuracy[order[i]]
            if groupBest > best {
                for k in i..<j where accuracy[order[k]] == groupBest { front.append(order[k]) }
                best = groupBest
            }
            i = j
        }
        return front
    }

    /// The same, by brute force: O(n²) pairwise dominance. The reference for tests.
    public static func bruteForce(params: [Int], accuracy: [Double]) -> [Int] {
        let n = params.count
        return (0..<n).filter { i in
            !(0..<n).contains { j in
                params[j] <= params[i] && accuracy[j] >= accuracy[i] && (params[j] < params[i] || accuracy[j] > accuracy[i])
            }
        }
    }

    /// Non-dominated sorting: the rank of each point (0 = on the front, 1 = on the front once rank 0 is
    /// removed, ...). Successive halving keeps the best ranks first.
    public static func ranks(params: [Int], accuracy: [Double]) -> [Int] {
        var rank = [Int](repeating: -1, count: params.count)
        var remaining = Array(params.indices)
        var r = 0
        while !remaining.isEmpty {
            let f = indices(params: remaining.map { params[$0] }, accuracy: remaining.map { accuracy[$0] })
            let members = Set(f.map { remaining[$0] })
            for i in members { rank[i] = r }
            remaining.removeAll { members.contains($0) }
            r += 1
        }
        return rank
    }

    /// NSGA-II's crowding distance within each rank: infinite at a rank's two ends (fewest parameters, highest
    /// accuracy), elsewhere the sum over both objectives of the normalised gap between the two neighbours.
    public static func crowdingDistance(params: [Int], accuracy: [Double], ranks: [Int]) -> [Double] {
        var distance = [Double](repeating: 0, count: params.count)
        for r in Set(ranks) {
            let members = params.indices.filter { ranks[$0] == r }
            for objective in 0..<2 {
                let value: (Int) -> Double = { objective == 0 ? Double(params[$0]) : accuracy[$0] }
                let sorted = members.sorted { (value($0), $0) < (value($1), $1) }
                guard let first = sorted.first, let last = sorted.last else { continue }
                distance[first] = .infinity
                distance[last] = .infinity
                let span = value(last) - value(first)
                guard span > 0, sorted.count > 2 else { continue }
                for k in 1..<(sorted.count - 1) {
                    distance[sorted[k]] += (value(sorted[k + 1]) - value(sorted[k - 1])) / span
                }
            }
        }
        return distance
    }
}
