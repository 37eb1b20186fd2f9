import ArgumentParser
import Foundation

/// The `layersplit` command: which layers to share between tasks, for a storage budget.
public struct LayerSplitCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "layersplit",
        abstract: "Find which layers to share between tasks, and which to keep task-specific, for a parameter budget.",
        version: LayerSplitVersion.string,
        subcommands: [
            Search.self,
            Front.self,
            Best.self,
            Export.self,
            Evaluate.self,
            Predict.self,
            Merge.self,
            Slurm.self,
            Train.self,
            Bench.self,
            DataCommand.self,
            Pretrain.self,
            Inspect.self,
            Migrate.self,
            LogWriter.self,
        ],
        defaultSubcommand: Search.self)

    public init() {}
}

public enum LayerSplitVersion {
    public static let string = "0.1.0"
}

// MARK: - Exit statuses

extension LayerSplitCommand {
    /// Runs the command line with the exit statuses the README documents: 0 done, 1 a failure at run time,
    /// 2 bad input (ArgumentParser's usage errors included, which it would exit 64 for), 3 `merge` planned the
    /// next stage, 130 / 143 a search stopped by SIGINT / SIGTERM. Every error is one line starting `error: `.
    public static func runMain(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
        if let unknown = unknownCommand(in: arguments) {
            fail("unknown command '\(unknown)'; see layersplit --help", status: 2)
        }
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            terminate(0)
        } catch let e as ExitCode {
            terminate(e.rawValue)   // the command reported it already
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }   // --help, --version: printed to standard output
            if code == .validationFailure {
                // A usage error (unknown option, missing or malformed value) or a ValidationError.
                let sub = arguments.first.flatMap { a in subcommandNames.contains(a) ? a + " " : nil } ?? ""
                let text = message(for: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "\(error)"
                let line = lowercasingFirst(text.trimmingCharacters(in: .whitespaces))
                let sentence = line.hasSuffix("?") || line.hasSuffix(".")
                fail(line + (sentence ? " See" : "; see") + " layersplit \(sub)--help", status: 2)
            }
            let (line, status) = ErrorReport.of(error)
            fail(line, status: status)
        }
    }

    /// Every name and alias of a subcommand, and `help`.
    static var subcommandNames: Set<String> {
        Set(configuration.subcommands.flatMap { [$0._commandName] + $0.configuration.aliases } + ["help"])
    }

    /// The first argument when it can only be a mistyped command: not an option, not a subcommand, not an
    /// existing file, and not a search-space file name (`.yaml`, `.yml`, which the default `search` reports
    /// as missing). Without this, `layersplit frobnicate` would be read as `layersplit search frobnicate`.
    static func unknownCommand(in arguments: [String]) -> String? {
        guard let first = arguments.first, !first.hasPrefix("-"), !subcommandNames.contains(first) else { return nil }
        let lower = first.lowercased()
        if lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") || FileManager.default.fileExists(atPath: first) { return nil }
        return first.debugDescription.dropFirst().dropLast().description
    }
}

/// Writes `error: line` to standard error and exits with `status`.
private func fail(_ line: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("error: \(line)\n".utf8))
    exit(status)
}

private func terminate(_ status: Int32) -> Never { exit(status) }

private func lowercasingFirst(_ s: String) -> String {
    guard let first = s.first, first.isUppercase, !(s.dropFirst().first?.isUppercase ?? false) else { return s }
    return first.lowercased() + s.dropFirst()
}

/// Text on one line: the lines of a multi-line message joined with "; " (blank ones dropped).
func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        .joined(separator: "; ")
}
