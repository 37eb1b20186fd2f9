import ArgumentParser
import Foundation
import LayerSplitData

extension LayerSplitCommand {
    /// `layersplit data ...`: the data a search space declares.
    struct DataCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "data",
            abstract: "Inspect the data a search space declares.",
            subcommands: [Describe.self])
    }
}

extension LayerSplitCommand.DataCommand {
    /// Builds a search space's tasks and prints what each one is.
    struct Describe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build the tasks of a search space's data: section and print each task's source, sizes, classes and class balance.",
            discussion: """
                Reads only the data: section (docs/DATA.md); other keys of the file are left to the commands that \
                use them. Relative paths in it are resolved against the file's folder. Example: \
                layersplit data describe search-spaces/examples-data/fashion-transforms.yaml
                """)

        @Argument(help: "A search-space YAML file with a data: section.")
        var space: String

        @Option(help: "Data seed (splits, subsamples, synthetic data); a data: seed in the file overrides it.")
        var seed: UInt64 = 0

        func run() throws {
            let spec = try DataSpec.load(file: space)
            let started = Date()
            let tasks = try spec.load(seed: seed)
            print(DataDescription.render(tasks, spec: spec, seed: seed))
            print(String(format: "\nbuilt in %.2f s", Date().timeIntervalSince(started)))
        }
    }
}
