import ArgumentParser
import LayerSplitEngine

/// Options every training command shares.
struct EngineOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and for running task-specific copies side by side.")
    var threads: Int = 1

    @Option(help: "Seed for initialisation, data and data order; the same seed and thread count repeat a run bit for bit.")
    var seed: UInt64 = 0

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    func apply() { Threads.set(threads) }
}

extension SharingMask: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }
}
