import ArgumentParser

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
