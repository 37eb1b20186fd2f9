/// One allocatable piece of a backbone: the granularity at which a mask decides sharing.
public struct UnitSpec: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable, Codable {
        /// Linear(→ width) + ReLU. `adapterRank` is the rank r of the unit's per-task adapters when it is in the
        /// adapter state (`linear:128:r4`; default 8); it does not change the shared unit.
        case linear(width: Int, adapterRank: Int = UnitSpec.defaultAdapterRank)
        /// Conv2d(kernel, stride, padding kernel/2, no bias) + BatchNorm + ReLU, optionally followed by 2x2 max
        /// pooling.
        case conv(channels: Int, kernel: Int, stride: Int, pool: Bool)
        /// A stage of `blocks` basic residual blocks; the first has the given stride.
        case residual(channels: Int, stride: Int, blocks: Int)

        /// The kind names used in model descriptions.
        public static let names = ["linear", "conv", "residual"]
    }

    public var kind: Kind

    public init(_ kind: Kind) { self.kind = kind }

    /// The rank of a linear unit's adapters unless its description says otherwise (`:rN`).
    public static let defaultAdapterRank = 8

    public static func linear(_ width: Int, adapterRank: Int = defaultAdapterRank) -> UnitSpec {
        UnitSpec(.linear(width: width, adapterRank: adapterRank))
    }
    public static func conv(_ channels: Int, kernel: Int = 3, stride: Int = 1, pool: Bool = false) -> UnitSpec {
        UnitSpec(.conv(channels: channels, kernel: kernel, stride: stride, pool: pool))
    }
    public static func residual(_ channels: Int, stride: Int = 1, blocks: Int = 1) -> UnitSpec {
        UnitSpec(.residual(channels: channels, stride: stride, blocks: blocks))
    }

    /// Parses the compact form used on the command line and in model attributes: `linear:512` or `linear:512:r4`
    /// (adapter rank 4), `conv:32` or `conv:32:k3:s2:pool`, `residual:64:s2` or `residual:64:s2:b2`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":").map(String.init)
        guard let name = parts.first else { throw EngineError.unknownUnitKind(text) }
        func int(_ s: String?, _ what: String) throws -> Int {
            guard let s, let v = Int(s), v > 0 else {
                throw EngineError.invalidModel("unit '\(text)': \(what) must be a positive integer")
            }
            return v
        }
        var kernel = 3, stride = 1, blocks = 1, pool = false, rank: Int?
        for opt in parts.dropFirst(2) {
            let value = String(opt.dropFirst())
            if opt == "pool" {
                pool = true
            } else if opt.hasPrefix("k") {
                kernel = try int(value, "kernel")
            } else if opt.hasPrefix("s") {
                stride = try int(value, "stride")
            } else if opt.hasPrefix("b") {
                blocks = try int(value, "blocks")
            } else if opt.hasPrefix("r") {
                rank = try int(value, "adapter rank")
            } else {
                throw EngineError.invalidModel("unit '\(text)': unknown option '\(opt)' (use kN, sN, bN, rN or pool)")
            }
        }
        if rank != nil && name != "linear" {
            throw EngineError.invalidModel("unit '\(text)': the adapter rank rN is for linear units (a conv or residual unit's adapter is a full 1x1 convolution)")
        }
        switch name {
        case "linear": self = .linear(try int(parts.count > 1 ? parts[1] : nil, "width"), adapterRank: rank ?? Self.defaultAdapterRank)
        case "conv": self = .conv(try int(parts.count > 1 ? parts[1] : nil, "channels"), kernel: kernel, stride: stride, pool: pool)
        case "residual": self = .residual(try int(parts.count > 1 ? parts[1] : nil, "channels"), stride: stride, blocks: blocks)
        default: throw EngineError.unknownUnitKind(name)
        }
    }

    public var description: String {
        switch kind {
        case let .linear(w, r): return "linear:\(w)" + (r != Self.defaultAdapterRank ? ":r\(r)" : "")
        case let .conv(c, k, s, p): return "conv:\(c)" + (k != 3 ? ":k\(k)" : "") + (s != 1 ? ":s\(s)" : "") + (p ? ":pool" : "")
        case let .residual(c, s, b): return "residual:\(c)" + (s != 1 ? ":s\(s)" : "") + (b != 1 ? ":b\(b)" : "")
        }
    }

    /// The unit without its adapter options (the rank back at its default): the shared unit, which is what
    /// pretrained weights fit. Two units with the same backbone hold the same shared tensors.
    public var backbone: UnitSpec {
        if case let .linear(w, _) = kind { return .linear(w) }
        return self
    }

    /// Builds the unit's layers for an input of per-example shape `input` (`[features]` or `[H, W, C]`).
    func build(input: [Int], rng: inout some RandomNumberGenerator) throws -> Sequential {
        switch kind {
        case let .linear(width, _):
            let features = input.reduce(1, *)
            return Sequential([Linear(features, width, rng: &rng), ReLU()], names: ["fc", "relu"])
        case let .conv(channels, kernel, stride, pool):
            guard input.count == 3 else {
                throw EngineError.invalidModel("unit \(self) needs an image input [H, W, C], got \(input)")
            }
            var layers: [Layer] = [
                Conv2d(inChannels: input[2], outChannels: channels, kernel: kernel, stride: stride,
                       padding: kernel / 2, rng: &rng),
                BatchNorm(channels: channels), ReLU(),
            ]
            var names = ["conv", "bn", "relu"]
            if pool { layers.append(MaxPool2d(kernel: 2, stride: 2)); names.append("pool") }
            return Sequential(layers, names: names)
        case let .residual(channels, stride, blocks):
            guard input.count == 3 else {
                throw EngineError.invalidModel("unit \(self) needs an image input [H, W, C], got \(input)")
            }
            var layers: [Layer] = []
            var inC = input[2]
            for b in 0..<blocks {
                layers.append(ResidualBlock(inChannels: inC, outChannels: channels, stride: b == 0 ? stride : 1, rng: &rng))
                inC = channels
            }
            return Sequential(layers, names: (0..<blocks).map { "block\($0)" })
        }
    }
}

/// A multi-task network's description: input shape, backbone units, one head per task.
public struct ModelSpec: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Per-example input shape: `[features]` for vectors, `[H, W, C]` for images.
    public var inputShape: [Int]
    public var units: [UnitSpec]
    /// Classes of each task's head; the number of tasks is its count.
    public var taskClasses: [Int]

    public init(inputShape: [Int], units: [UnitSpec], taskClasses: [Int]) {
        self.inputShape = inputShape
        self.units = units
        self.taskClasses = taskClasses
    }

    public var taskCount: Int { taskClasses.count }

    /// The reference MLP of the benchmarks: 784 → 4 × (Linear 512 + ReLU), 4 tasks of 10 classes.
    public static let referenceMLP = ModelSpec(
        inputShape: [784], units: Array(repeating: .linear(512), count: 4), taskClasses: [10, 10, 10, 10])

    /// The reference CNN: stem conv 32, residual stages 32, 64 (stride 2), 128 (stride 2), global average
    /// pooling, 4 tasks of 10 classes, on 28 x 28 x 1 images.
    public static let referenceCNN = ModelSpec(
        inputShape: [28, 28, 1],
        units: [.conv(32), .residual(32), .residual(64, stride: 2), .residual(128, stride: 2)],
        taskClasses: [10, 10, 10, 10])

    public var description: String {
        "input \(inputShape.map(String.init).joined(separator: "x")); units "
            + units.map(\.description).joined(separator: ", ")
            + "; heads " + taskClasses.map(String.init).joined(separator: ",")
    }

    /// Throws unless the description can be built.
    public func validate() throws {
        guard !units.isEmpty else { throw EngineError.invalidModel("a model needs at least one unit") }
        guard !taskClasses.isEmpty else { throw EngineError.invalidModel("a model needs at least one task") }
        guard taskClasses.allSatisfy({ $0 >= 2 }) else {
            throw EngineError.invalidModel("every task needs at least 2 classes, got \(taskClasses)")
        }
        guard inputShape.count == 1 || inputShape.count == 3, inputShape.allSatisfy({ $0 > 0 }) else {
            throw EngineError.invalidModel("input shape must be [features] or [H, W, C], got \(inputShape)")
        }
        for unit in units {
            if case let .linear(_, rank) = unit.kind, rank < 1 {
                throw EngineError.invalidModel("unit \(unit): the adapter rank must be a positive integer, got \(rank)")
            }
        }
    }
}
