import Foundation
import LayerSplitEngine
import LayerSplitSearch

/// `front.svg`: every candidate as a point (colour by family, error bar ±1 std over seeds), the Pareto front as
/// a staircase whose rises the seeds cannot tell from noise are dashed with hollow points, labelled axes. Plain SVG 1.1 that browsers and Inkscape open; no dependencies.
public enum FrontPlot {
    static let colours: [String: String] = [
        "all-shared": "#222222", "bottom-k": "#1f77b4", "top-k": "#ff7f0e", "all-specific": "#d62728",
        "adapters-everywhere": "#2ca02c", "other": "#9a9a9a",
    ]

    public static func svg(_ r: FrontReport, width: Double = 820, height: Double = 520) -> String {
        let left = 80.0, right = 190.0, top = 50.0, bottom = 60.0
        let pw = width - left - right, ph = height - top - bottom
        let pts = r.candidates.filter { $0.meanAccuracy.isFinite }
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left)" y="28" font-size="15" font-weight="bold">\(escape(r.study)): accuracy against stored parameters</text>

        """
        guard !pts.isEmpty else { return out + "<text x=\"\(left)\" y=\"\(top + 20)\">no finished candidates</text>\n</svg>\n" }
        let xs = pts.map { Double($0.counts.stored) }
        let ys = pts.flatMap { [($0.meanAccuracy - $0.stdAccuracy) * 100, ($0.meanAccuracy + $0.stdAccuracy) * 100] }
        let (x0, x1) = padded(xs.min()!, xs.max()!)
        let (y0, y1) = padded(ys.min()!, ys.max()!)
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double { top + ph - (y - y0) / (y1 - y0) * ph }

        // Axes, grid and ticks.
        out += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#444\"/>\n"
        for t in ticks(x0, x1) {
            out += "<line x1=\"\(f(px(t)))\" y1=\"\(top)\" x2=\"\(f(px(t)))\" y2=\"\(top + ph)\" stroke=\"#eee\"/>\n"
            out += "<text x=\"\(f(px(t)))\" y=\"\(f(top + ph + 18))\" text-anchor=\"middle\">\(formatCount(Int(t.rounded())))</text>\n"
        }
        for t in ticks(y0, y1) {
            out += "<line x1=\"\(left)\" y1=\"\(f(py(t)))\" x2=\"\(left + pw)\" y2=\"\(f(py(t)))\" stroke=\"#eee\"/>\n"
            out += "<text x=\"\(f(left - 8))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(String(format: "%.4g", t))</text>\n"
        }
        out += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 15))\" text-anchor=\"middle\">stored parameters (floats: shared + tasks × specific + heads)</text>\n"
        out += "<text transform=\"translate(20 \(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">mean accuracy over tasks (%), ±1 std over seeds</text>\n"

        // The front as a staircase: accuracy holds until the next front point's size. A rise the seeds cannot
        // tell from noise (its paired 95% interval contains 0, or one seed) is dashed and its point hollow.
        let front = r.front.map { r.candidates[$0] }
        var uncertain = Set<SharingMask>()
        for (k, c) in front.enumerated() where k > 0 {
            if let d = r.neighbourDifferences[k], d.verdict != .better { uncertain.insert(c.mask) }
        }
        if !front.isEmpty {
            var solid = "M \(f(px(Double(front[0].counts.stored)))) \(f(py(front[0].meanAccuracy * 100)))"
            var dashed = ""
            for (prev, c) in zip(front, front.dropFirst()) {
                let x = f(px(Double(c.counts.stored))), y0 = f(py(prev.meanAccuracy * 100)), y1 = f(py(c.meanAccuracy * 100))
                solid += " H \(x)"
                if uncertain.contains(c.mask) {
                    dashed += " M \(x) \(y0) V \(y1)"
                    solid += " M \(x) \(y1)"
                } else {
                    solid += " V \(y1)"
                }
            }
            solid += " H \(f(left + pw))"
            out += "<path d=\"\(solid)\" fill=\"none\" stroke=\"#2b8a3e\" stroke-width=\"2\" opacity=\"0.8\"/>\n"
            if !dashed.isEmpty {
                out += "<path d=\"\(dashed.dropFirst())\" fill=\"none\" stroke=\"#2b8a3e\" stroke-width=\"2\" stroke-dasharray=\"5 4\" opacity=\"0.8\"/>\n"
            }
        }
        let onFront = Set(front.map(\.mask))
        let steps = Dictionary(uniqueKeysWithValues: front.enumerated().compactMap { k, c in r.neighbourDifferences[k].map { (c.mask, $0) } })
        for c in pts {
            let x = px(Double(c.counts.stored)), y = py(c.meanAccuracy * 100)
            let colour = colours[MaskFamily.of(c.mask).rawValue] ?? "#9a9a9a"
            if c.stdAccuracy > 0 {
                out += "<line x1=\"\(f(x))\" y1=\"\(f(py((c.meanAccuracy - c.stdAccuracy) * 100)))\" x2=\"\(f(x))\" y2=\"\(f(py((c.meanAccuracy + c.stdAccuracy) * 100)))\" stroke=\"\(colour)\" opacity=\"0.6\"/>\n"
            }
            let ring = onFront.contains(c.mask) ? " stroke=\"#2b8a3e\" stroke-width=\"2\"" : ""
            let fill = uncertain.contains(c.mask) ? "white\" stroke=\"\(colour)\" stroke-width=\"2.5" : colour
            let step = steps[c.mask].map { ", vs previous front point " + escape($0.cellText()) } ?? ""
            out += "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"4.5\" fill=\"\(fill)\"\(uncertain.contains(c.mask) ? "" : ring)><title>\(c.mask) (\(c.family)): \(String(format: "%.2f", c.meanAccuracy * 100))% ± \(String(format: "%.2f", c.stdAccuracy * 100)), \(formatCount(c.counts.stored)) params\(step)</title></circle>\n"
            if onFront.contains(c.mask) {
                out += "<text x=\"\(f(x + 6))\" y=\"\(f(y - 6))\" font-size=\"10\" fill=\"#333\">\(c.mask)</text>\n"
            }
        }

        // Legend.
        var ly = top + 10
        let families = ["all-shared", "bottom-k", "top-k", "all-specific", "adapters-everywhere", "other"]
        let present = Set(pts.map { MaskFamily.of($0.mask).rawValue })
        for fam in families where present.contains(fam) {
            out += "<circle cx=\"\(f(left + pw + 20))\" cy=\"\(f(ly))\" r=\"4.5\" fill=\"\(colours[fam]!)\"/>"
            out += "<text x=\"\(f(left + pw + 32))\" y=\"\(f(ly + 4))\">\(fam)</text>\n"
            ly += 20
        }
        out += "<line x1=\"\(f(left + pw + 12))\" y1=\"\(f(ly))\" x2=\"\(f(left + pw + 28))\" y2=\"\(f(ly))\" stroke=\"#2b8a3e\" stroke-width=\"2\"/>"
        out += "<text x=\"\(f(left + pw + 32))\" y=\"\(f(ly + 4))\">Pareto front</text>\n"
        if !uncertain.isEmpty {
            ly += 20
            out += "<line x1=\"\(f(left + pw + 12))\" y1=\"\(f(ly))\" x2=\"\(f(left + pw + 28))\" y2=\"\(f(ly))\" stroke=\"#2b8a3e\" stroke-width=\"2\" stroke-dasharray=\"5 4\"/>"
            out += "<circle cx=\"\(f(left + pw + 20))\" cy=\"\(f(ly))\" r=\"4.5\" fill=\"white\" stroke=\"#555\" stroke-width=\"2.5\"/>"
            out += "<text x=\"\(f(left + pw + 32))\" y=\"\(f(ly + 4))\">step within noise</text>\n"
            out += "<text x=\"\(f(left + pw + 32))\" y=\"\(f(ly + 18))\" font-size=\"10\" fill=\"#555\">(paired 95% CI contains 0,</text>\n"
            out += "<text x=\"\(f(left + pw + 32))\" y=\"\(f(ly + 30))\" font-size=\"10\" fill=\"#555\">or one seed)</text>\n"
        }
        return out + "</svg>\n"
    }

    static func padded(_ lo: Double, _ hi: Double) -> (Double, Double) {
        let span = hi - lo
        if span <= 0 { return (lo - max(abs(lo) * 0.05, 1), hi + max(abs(hi) * 0.05, 1)) }
        return (lo - span * 0.06, hi + span * 0.06)
    }

    /// Four to eight round tick values between lo and hi.
    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 8
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        var t = ceil(lo / step) * step, out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(t); t += step }
        return out
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
