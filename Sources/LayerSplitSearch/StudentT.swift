import Foundation

/// Student's t distribution for the paired intervals: its distribution function and quantiles, without a
/// statistics library.
///
/// `quantile` reads the usual two-sided 95% column (p = 0.975) from a table for 1–30 degrees of freedom,
/// inverts the exact distribution function by bisection up to 1,000 degrees of freedom, and uses the
/// Cornish–Fisher expansion about the normal quantile (Abramowitz & Stegun 26.7.5; error below 1e-8 there)
/// beyond. Known values: t(0.975, 1) = 12.706, t(0.975, 4) = 2.776, t(0.975, 9) = 2.262, t(0.975, 29) = 2.045.
public enum StudentT {
    /// t(0.975, df) for df = 1…30, to four decimals.
    static let table975: [Double] = [
        12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
    ]

    /// The t with `P(T ≤ t) = p`, for 0 < p < 1 and at least one degree of freedom.
    public static func quantile(_ p: Double, degreesOfFreedom df: Int) -> Double {
        precondition(p > 0 && p < 1 && df >= 1, "StudentT.quantile needs 0 < p < 1 and df ≥ 1")
        if p < 0.5 { return -quantile(1 - p, degreesOfFreedom: df) }
        if p == 0.5 { return 0 }
        if p == 0.975 && df <= table975.count { return table975[df - 1] }
        if df == 1 { return tan(Double.pi * (p - 0.5)) }
        if df > 1000 { return cornishFisher(p, degreesOfFreedom: df) }
        return invert(p) { cdf($0, degreesOfFreedom: df) }
    }

    /// The exact `P(T ≤ t)` for integer degrees of freedom (Abramowitz & Stegun 26.7.3–4: a finite
    /// sum in θ = atan(t/√df)).
    public static func cdf(_ t: Double, degreesOfFreedom df: Int) -> Double {
        precondition(df >= 1, "StudentT.cdf needs df ≥ 1")
        if t.isNaN { return .nan }
        if t < 0 { return 1 - cdf(-t, degreesOfFreedom: df) }
        if t.isInfinite { return 1 }
        let theta = atan(t / Double(df).squareRoot())
        let c2 = cos(theta) * cos(theta)
        let a: Double  // P(|T| < t)
        if df % 2 == 1 {
            var term = cos(theta), sum = 0.0
            if df > 1 {
                sum = term
                for k in stride(from: 3, to: df - 1, by: 2) { term *= c2 * Double(k - 1) / Double(k); sum += term }
            }
            a = 2 / Double.pi * (theta + sin(theta) * sum)
        } else {
            var term = 1.0, sum = 1.0
            for k in stride(from: 2, to: df - 1, by: 2) { term *= c2 * Double(k - 1) / Double(k); sum += term }
            a = sin(theta) * sum
        }
        return min(1, (1 + a) / 2)
    }

    /// The standard normal quantile, by bisection on `erfc`.
    static func normalQuantile(_ p: Double) -> Double {
        invert(p) { 0.5 * erfc(-$0 / 2.0.squareRoot()) }
    }

    static func cornishFisher(_ p: Double, degreesOfFreedom df: Int) -> Double {
        let z = normalQuantile(p), v = Double(df)
        let z2 = z * z
        let g1 = z * (z2 + 1) / 4
        let g2 = z * ((5 * z2 + 16) * z2 + 3) / 96
        let g3 = z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / 384
        let g4 = z * ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) / 92160
        return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v)
    }

    /// The x ≥ 0 with `f(x) = p` for an increasing `f` with f(0) = 1/2 ≤ p < 1.
    static func invert(_ p: Double, _ f: (Double) -> Double) -> Double {
        var lo = 0.0, hi = 1.0
        while f(hi) < p && hi < 1e12 { hi *= 2 }
        for _ in 0..<200 where hi - lo > 1e-12 * hi {
            let mid = (lo + hi) / 2
            if f(mid) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }
}
