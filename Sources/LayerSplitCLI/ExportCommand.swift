import ArgumentParser
import Foundation
import LayerSplitEngine
import LayerSplitReport
import LayerSplitRun
import LayerSplitSearch
import LayerSplitStore

extension LayerSplitCommand {
    /// Writes the trained model a search chose for a budget as a weights file.
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the trained model of a run's answer for a budget (or of one mask) as a weights file.",
            discussion: """
                Picks the mask as 'layersplit best --budget' does (the most accurate that fits; --cheapest for the \
                cheapest mask statistically indistinguishable from it), or --mask; then one seed's trained model \
                (--seed, default the seed of median accuracy), kept by the search in RUN/models/ (see 'training: \
                {keep: front | all | none}' in docs/SEARCH-SPACES.md). The file loads in h5py and PyTorch \
                (scripts/h5_to_torch.py); 'layersplit evaluate FILE SPACE' measures it again.
                Example: layersplit export results/families --budget +25% -o model.h5
                """)

        @Argument(help: ArgumentHelp("A results folder (or its log.h5).", valueName: "run")) var runFolder: String
        @Option(help: "Stored-parameter budget: a count (1.2M, 350k) or a fraction over all-shared (+25%).")
        var budget: String?
        @Flag(help: "With --budget: the cheapest mask indistinguishable from the most accurate one (as 'best' prints it second).")
        var cheapest = false
        @Option(help: "Export this mask instead of a budget's answer.") var mask: String?
        @Option(help: "The seed whose model to write (default: the seed of median mean accuracy).") var seed: UInt64?
        @Option(name: .shortAndLong, help: "The weights file to write.") var output: String

        func validate() throws {
            guard (budget == nil) != (mask == nil) else { throw ValidationError("give --budget B or --mask M (one of them)") }
            if cheapest && budget == nil { throw ValidationError("--cheapest goes with --budget") }
        }

        func run() throws {
            try reportingErrors {
                let logPath = try runLogPath(runFolder)
                let folder = (logPath as NSString).deletingLastPathComponent
                let report = try StudyRun.report(fromLog: logPath)
                let candidate = try chosenCandidate(report)
                let (trial, why) = try chosenTrial(candidate)
                let source = FolderModels.path(trial.key, in: FolderModels.folder(of: folder.isEmpty ? "." : folder))
                guard FileManager.default.fileExists(atPath: source) else {
                    throw StudyError(try notKept(trial.key, report: report, logPath: logPath, source: source))
                }
                let info = try TrainedModelFile.info(source)
                guard info.trial == trial.key.id else {
                    throw StudyError("\(source): holds trial \(info.trial ?? "(none)"), not \(trial.key.id); the models folder does not belong to this log")
                }
                let bytes: Data
                do { bytes = try Data(contentsOf: URL(fileURLWithPath: source)) } catch {
                    throw StudyError("\(source): cannot read it (\(error.localizedDescription))")
                }
                try AtomicFile.write(bytes, to: output)
                let acc = trial.accuracy.map { String(format: "%.4f", $0) }.joined(separator: " ")
                print("wrote \(output): mask \(candidate.mask) (\(candidate.family), \(formatCount(candidate.counts.stored)) params), seed \(trial.key.seed) \(why), \(trial.key.steps) steps")
                print("logged accuracy per task (\(report.taskNames.joined(separator: ", "))): [\(acc)]  mean \(String(format: "%.4f", trial.meanAccuracy))"
                      + (info.evaluation.map { " on the \($0) split" } ?? ""))
            }
        }

        /// The budget's answer (most accurate, or with --cheapest the cheapest indistinguishable), or --mask.
        func chosenCandidate(_ report: FrontReport) throws -> Candidate {
            if let mask {
                let m: SharingMask
                do { m = try SharingMask(parsing: mask) } catch { throw InputError("--mask \(mask): \(error)") }
                guard let c = report.candidates.first(where: { $0.mask == m && $0.isDone }) else {
                    throw StudyError("mask \(m) has no fully trained trials in \(runFolder); 'layersplit front \(runFolder)' lists the candidates")
                }
                return c
            }
            let b: Budget
            do { b = try Budget.parse(budget ?? "") } catch let e as Budget.ParseError { throw InputError("--budget \(e)") }
            guard let answer = report.answer(under: b) else {
                let smallest = report.candidates.map(\.counts.stored).min()
                throw StudyError("no mask of \(runFolder) fits \(b)" + (smallest.map { ": the smallest trained mask stores \(formatCount($0)) (\($0)) parameters" } ?? ": the run has no finished candidates"))
            }
            return cheapest ? answer.cheapest : answer.best
        }

        /// The trial of --seed, or the one whose mean accuracy is the median of the candidate's seeds (the lower
        /// middle one for an even count), with a phrase saying which.
        func chosenTrial(_ c: Candidate) throws -> (TrialResult, String) {
            let done = c.trials.filter { $0.state == .done }
            if let seed {
                guard let t = done.first(where: { $0.key.seed == seed }) else {
                    throw StudyError("mask \(c.mask) has no finished trial with seed \(seed); its seeds: \(done.map { String($0.key.seed) }.joined(separator: ", "))")
                }
                return (t, "(--seed)")
            }
            let sorted = done.sorted { ($0.meanAccuracy, $0.key.seed) < ($1.meanAccuracy, $1.key.seed) }
            guard !sorted.isEmpty else { throw StudyError("mask \(c.mask) has no finished trial in \(runFolder)") }
            let t = sorted[(sorted.count - 1) / 2]
            return (t, sorted.count == 1 ? "(its only seed)" : "(the median of its \(sorted.count) seeds by mean accuracy; --seed K for another)")
        }

        /// Why the model file of `key` is missing, and the fix.
        func notKept(_ key: TrialKey, report: FrontReport, logPath: String, source: String) throws -> String {
            let keep = SearchSpace.keepSetting(inText: try RunLog.open(at: logPath).info.searchSpace)
            let rerun = "rerun the search with 'training: {keep: all}' into a new output folder (trials are deterministic: the same seeds give the same models)"
            switch keep {
            case .none:
                return "\(source): not kept: the search ran with 'training: {keep: none}'; \(rerun)"
            case .front where !report.front.contains(where: { report.candidates[$0].mask == key.mask }):
                return "\(source): not kept: mask \(key.mask) is not on the front, and 'keep: front' keeps only the models of front masks; export a front mask ('layersplit front \(runFolder)'), or \(rerun)"
            default:
                return "\(source): no such model file (the run kept '\(keep.rawValue)'; was it removed, or was the trial logged by a merge of shards that wrote it elsewhere?); \(rerun)"
            }
        }
    }
}
