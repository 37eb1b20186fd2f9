import Foundation
import LayerSplitSearch

/// Progress of a study for a person: on a terminal one live line, rewritten in place (trial i of N, step,
/// loss, elapsed, ETA, best so far); otherwise plain lines, one per finished trial, that logs keep.
public final class ProgressPrinter: StudyObserver {
    public enum Mode { case live, lines, quiet }

    let mode: Mode
    let started = Date()
    var round = 0, rung = 0, rungs = 1
    var index = 0, total = 0
    var trainedSeconds = 0.0, trained = 0
    var best: (mask: String, accuracy: Double)?
    var lastDraw = Date.distantPast

    /// `.live` when standard error is a terminal, `.lines` otherwise, `.quiet` when asked.
    public init(quiet: Bool) {
        mode = quiet ? .quiet : (isatty(STDERR_FILENO) != 0 ? .live : .lines)
    }

    public init(mode: Mode) { self.mode = mode }

    public func roundStarted(round: Int, rung: Int, rungs: Int, trials: Int) {
        self.round = round
        self.rung = rung
        self.rungs = rungs
        index = 0
        total = trials
        guard mode != .quiet else { return }
        let r = rungs > 1 ? " rung \(rung + 1)/\(rungs)" : ""
        emit("round \(round + 1)\(r): \(trials) trials", newline: true)
    }

    public func trialStarted(_ key: TrialKey, round: Int) { index += 1 }

    public func trialSkipped(_ key: TrialKey) {
        index += 1
        if mode == .lines { emit("[\(index)/\(total)] \(key.id): already in the log, not retrained", newline: true) }
    }

    public func trialProgress(_ key: TrialKey, _ p: TrialProgress) {
        guard mode == .live, Date().timeIntervalSince(lastDraw) > 0.2 else { return }
        lastDraw = Date()
        emit("[\(index)/\(total)] \(key.mask) seed \(key.seed) step \(p.step)/\(p.steps) loss \(String(format: "%.4f", p.loss))"
             + status(), newline: false)
    }

    public func trialFinished(_ r: TrialResult) {
        trained += 1
        trainedSeconds += r.seconds
        if r.state == .done, r.meanAccuracy > best?.accuracy ?? -1 { best = (r.key.mask.description, r.meanAccuracy) }
        guard mode != .quiet else { return }
        let state = r.state == .done ? String(format: "acc %.4f", r.meanAccuracy) : "\(r.state.rawValue): \(r.message)"
        emit("[\(index)/\(total)] \(r.key.id) \(state) (\(String(format: "%.1f", r.seconds))s)" + status(), newline: true)
    }

    /// A line about work outside the trials (pretraining a seed), unless quiet.
    public func note(_ text: String) {
        if mode != .quiet { emit(text, newline: true) }
    }

    private func status() -> String {
        let elapsed = Date().timeIntervalSince(started)
        var s = "  elapsed \(clock(elapsed))"
        if trained > 0 && total > index { s += " ETA(round) \(clock(trainedSeconds / Double(trained) * Double(total - index)))" }
        if let best { s += "  best \(best.mask) \(String(format: "%.4f", best.accuracy))" }
        return s
    }

    private func emit(_ text: String, newline: Bool) {
        if mode == .live {
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + text + (newline ? "\n" : "")).utf8))
        } else {
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }

    private func clock(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
