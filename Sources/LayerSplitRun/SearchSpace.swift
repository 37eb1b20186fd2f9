import Foundation
import LayerSplitData
import LayerSplitEngine
import LayerSplitSearch
import LayerSplitStore
import Yams

/// One study, as its `search-spaces/*.yaml` file declares it: the model, the tasks and data, the budget, the
/// allowed states, the strategy, the training recipe, the seeds and the output folder.
///
/// Parsing validates everything before any training: unknown keys, wrong types, missing data, a budget that no
/// mask fits. Every error is one line naming the file, the line and the field (`DataError.spec`). The schema is
/// in docs/SEARCH-SPACES.md.
public struct SearchSpace: Sendable {
    public enum StrategyKind: String, Sendable, CaseIterable { case exhaustive, families, greedy, random, list }
    public enum Split: String, Sendable, CaseIterable { case validation, test }
    /// Which trained models a search keeps in `OUTPUT/models/` (`training.keep`): those of the masks on the
    /// front (every seed), every fully trained trial's, or none.
    public enum KeepModels: String, Sendable, CaseIterable { case front, all, none }

    public struct Pretrain: Sendable, Hashable {
        /// Start every seed from this weights file instead of pretraining.
        public var initPath: String?
        /// Otherwise: pretrain all-shared on the union of the tasks with this recipe (0 steps: no pretraining).
        public var recipe: TrainingRecipe
    }

    public var file: String
    /// The file's text, stored in the run log so a result says exactly what produced it.
    public var text: String
    /// `RunLog.hash(ofSearchSpace:)` of `text`: a changed file is a different study.
    public var hash: String
    public var study: String
    public var units: [UnitSpec]
    public var data: DataSpec
    /// Allowed states per unit.
    public var allowed: [[SharingState]]
    public var budget: Budget
    public var strategy: StrategyKind
    /// For `random`: how many masks.
    public var randomCount: Int
    /// For `list`: the masks to train.
    public var listedMasks: [SharingMask] = []
    public var halving: SuccessiveHalving?
    public var training: TrainingRecipe
    public var evalEvery: Int
    /// `training.keep`: which trials' final weights stay in `OUTPUT/models/` (see `FolderModels`).
    public var keep: KeepModels = .front
    public var pretrain: Pretrain
    public var evaluation: Split
    public var seeds: [UInt64]
    public var output: String
    /// Where the budget was given, for the error when no mask fits it (checked once the data fixes the model).
    public var budgetLocation: SpecLocation

    public static let topKeys = ["study", "model", "data", "states", "budget", "strategy", "training", "pretrain",
                                 "evaluation", "seeds", "output"]
    static let modelKeys = ["units"]
    static let budgetKeys = ["max_params", "max_specific_fraction"]
    static let strategyKeys = ["name", "count", "masks", "successive_halving"]
    static let halvingKeys = ["min_steps", "eta"]
    static let trainingKeys = ["steps", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule",
                               "step_every", "gamma", "warmup", "eval_every", "keep"]
    static let pretrainKeys = ["init"] + trainingKeys.filter { $0 != "eval_every" && $0 != "keep" }

    /// Reads and validates the search space at `path`.
    public static func load(_ path: String) throws -> SearchSpace {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw DataError.file(path: path, problem: exists ? "cannot be read as UTF-8 text" : "no such search-space file; see search-spaces/ for examples")
        }
        return try SearchSpace(yaml: text, file: path)
    }

    public init(yaml text: String, file: String) throws {
        self.file = file
        self.text = text
        hash = RunLog.hash(ofSearchSpace: text)
        let root: Node
        do {
            guard let r = try Yams.compose(yaml: text) else {
                throw DataError.spec(file: file, line: 1, field: "(file)", problem: "the file is empty; see search-spaces/quickstart.yaml")
            }
            root = r
        } catch let e as YamlError {
            throw DataError.yamlSyntax(e, file: file)
        }
        let top = YAMLField(node: root, path: "", file: file)
        var fields: [String: YAMLField] = [:]
        for (key, field) in try top.mapping(allowed: Self.topKeys, what: "a search space: a mapping") {
            fields[key] = YAMLField(node: field.node, path: key, file: file)
        }
        func required(_ key: String) throws -> YAMLField {
            guard let f = fields[key] else { throw top.error("missing '\(key):'; a search space needs \(["model", "data"].joined(separator: ", "))") }
            return f
        }
        if let f = fields["study"] {
            study = try Self.printable(f)
        } else {
            study = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
            if let problem = Self.controlCharacterProblem(study) {
                throw top.error("the study is named after the file, and its name \(problem); rename the file or set 'study:'")
            }
        }

        // Model.
        let model = try required("model")
        var units: [UnitSpec] = []
        var unitsField = model
        for (key, f) in try model.mapping(allowed: Self.modelKeys) where key == "units" {
            unitsField = f
            let items = try f.sequence()
            guard items.count <= SpecLimits.units else {
                throw f.error("\(items.count) units; at most \(SpecLimits.units) (the limit in docs/SEARCH-SPACES.md)")
            }
            units = try items.map { u in
                let unit: UnitSpec
                do { unit = try UnitSpec(parsing: try u.string()) } catch let e as EngineError { throw u.error("\(e)") }
                if let problem = Self.unitProblem(unit) { throw u.error(problem) }
                return unit
            }
        }
        guard !units.isEmpty else { throw model.error("'units:' must list at least one unit, e.g. [linear:128, linear:128]") }
        self.units = units

        data = try DataSpec(node: try required("data").node, file: file)

        // Allowed states: one list for every unit, or one list per unit.
        allowed = Array(repeating: [.shared, .specific], count: units.count)
        if let f = fields["states"] {
            let items = try f.sequence()
            let nested = items.contains { if case .sequence = $0.node { true } else { false } }
            if nested {
                guard items.count == units.count else {
                    throw f.error("\(items.count) lists of states for \(units.count) units; give one list per unit or one list for all")
                }
                allowed = try items.map { try Self.states($0.sequence()) }
            } else {
                allowed = Array(repeating: try Self.states(items), count: units.count)
            }
            for (u, states) in allowed.enumerated() where states.contains(.adapter) && !units[u].acceptsAdapter {
                throw f.error("unit \(u + 1) (\(units[u])) cannot take state A: a 1x1 adapter lines up only with an odd-kernel convolution; allow S and T for it")
            }
        }
        // Every strategy enumerates the allowed masks (to apply the budget): keep that enumerable.
        let masks = allowed.reduce(1.0) { $0 * Double(Set($1).count) }
        if masks > Double(SpecLimits.masks) {
            throw (fields["states"] ?? unitsField).error("\(units.count) units with these states make \(String(format: "%.3g", masks)) masks; at most \(SpecLimits.masks) (2^20, the limit in docs/SEARCH-SPACES.md): use fewer units or allow fewer states per unit")
        }

        // Budget.
        budget = .unlimited
        if let f = fields["budget"], f.node != Node("none"), f.text?.lowercased() != "none" {
            let entries = try f.mapping(allowed: Self.budgetKeys, what: "a budget: max_params or max_specific_fraction")
            guard entries.count == 1, let (key, v) = entries.first else { throw f.error("give exactly one of max_params, max_specific_fraction") }
            do {
                budget = key == "max_params" ? try Budget.maxParams(parsing: try v.string())
                                             : try Budget.maxSpecificFraction(checking: try v.double())
            } catch let e as Budget.ParseError {
                throw v.error(e.description)
            }
        }

        // Strategy.
        strategy = .families
        randomCount = 0
        halving = nil
        if let f = fields["strategy"] {
            if let name = f.text {
                guard let k = StrategyKind(rawValue: name) else { throw f.error("unknown strategy '\(name)'; use one of \(StrategyKind.allCases.map(\.rawValue).joined(separator: ", "))") }
                strategy = k
            } else {
                var sawName = false
                for (key, v) in try f.mapping(allowed: Self.strategyKeys) {
                    switch key {
                    case "name":
                        sawName = true
                        let name = try v.string()
                        guard let k = StrategyKind(rawValue: name) else { throw v.error("unknown strategy '\(name)'; use one of \(StrategyKind.allCases.map(\.rawValue).joined(separator: ", "))") }
                        strategy = k
                    case "count": randomCount = try v.int(min: 1, max: SpecLimits.masks)
                    case "masks":
                        listedMasks = try v.sequence().map { m in
                            let mask: SharingMask
                            do { mask = try SharingMask(parsing: try m.string()) } catch let e as EngineError { throw m.error("\(e)") }
                            guard mask.count == units.count else { throw m.error("\(EngineError.maskLength(mask: mask.description, units: units.count))") }
                            if let u = mask.states.indices.first(where: { mask[$0] == .adapter && !units[$0].acceptsAdapter }) {
                                throw m.error("unit \(u + 1) (\(units[u])) cannot be an adapter unit (A): a 1x1 adapter lines up only with an odd-kernel convolution")
                            }
                            return mask
                        }
                    case "successive_halving":
                        var minSteps = 0, eta = 3
                        for (hk, hv) in try v.mapping(allowed: Self.halvingKeys) {
                            if hk == "min_steps" { minSteps = try hv.int(min: 1, max: SpecLimits.steps) } else { eta = try hv.int(min: 2, max: SpecLimits.eta) }
                        }
                        guard minSteps > 0 else { throw v.error("successive_halving needs min_steps (the first rung's training steps)") }
                        halving = SuccessiveHalving(minSteps: minSteps, eta: eta)
                    default: break
                    }
                }
                guard sawName else { throw f.error("the strategy needs a 'name:' (\(StrategyKind.allCases.map(\.rawValue).joined(separator: ", ")))") }
                if strategy == .random && randomCount == 0 { throw f.error("the random strategy needs 'count:' (how many masks to draw)") }
                if strategy == .list && listedMasks.isEmpty { throw f.error("the list strategy needs 'masks:' (e.g. [SSSS, TTSS, AAAA])") }
            }
        }

        // Training.
        var recipe = TrainingRecipe()
        evalEvery = 0
        if let f = fields["training"] {
            recipe = try Self.recipe(f, into: recipe, evalEvery: &evalEvery)
            if let k = try f.mapping(allowed: Self.trainingKeys).first(where: { $0.key == "keep" }) {
                let t = try k.field.string()
                guard let value = KeepModels(rawValue: t) else {
                    throw k.field.error("unknown value '\(t)'; use front (the models of the masks on the front), all or none")
                }
                keep = value
            }
        }
        training = recipe
        if evalEvery == 0 { evalEvery = max(recipe.steps / 10, 1) }
        if let h = halving, h.minSteps >= recipe.steps {
            throw fields["strategy"]!.error("successive_halving.min_steps (\(h.minSteps)) must be below training.steps (\(recipe.steps))")
        }

        // Pretraining.
        pretrain = Pretrain(initPath: nil, recipe: TrainingRecipe(steps: 0))
        if let f = fields["pretrain"] {
            var p = TrainingRecipe(steps: recipe.steps, batchSize: recipe.batchSize, optimizer: recipe.optimizer,
                                   learningRate: recipe.learningRate, momentum: recipe.momentum,
                                   weightDecay: recipe.weightDecay, schedule: recipe.schedule)
            var initPath: String?
            var unused = 0
            let entries = try f.mapping(allowed: Self.pretrainKeys)
            if let i = entries.first(where: { $0.key == "init" }) {
                let path = try i.field.string()
                initPath = path.hasPrefix("/") ? path : URL(fileURLWithPath: data.baseDirectory).appendingPathComponent(path).path
                guard FileManager.default.fileExists(atPath: initPath!) else {
                    throw i.field.error("no weights file '\(initPath!)'; write one with 'layersplit pretrain' or scripts/torch_to_h5.py")
                }
            }
            p = try Self.recipe(YAMLField(node: Self.without(f.node, key: "init"), path: f.path, file: file), into: p, evalEvery: &unused)
            pretrain = Pretrain(initPath: initPath, recipe: p)
        }

        evaluation = .validation
        if let f = fields["evaluation"] {
            let t = try f.string()
            guard let s = Split(rawValue: t) else { throw f.error("unknown split '\(t)'; use validation or test") }
            evaluation = s
        }
        if evaluation == .validation && data.validation == 0 {
            throw (fields["evaluation"] ?? top).error("evaluation on the validation split needs data.validation > 0; set it or use 'evaluation: test'")
        }

        seeds = [0]
        if let f = fields["seeds"] {
            if case .sequence = f.node {
                let items = try f.sequence()
                guard items.count <= SpecLimits.seedCount else {
                    throw f.error("\(items.count) seeds; at most \(SpecLimits.seedCount) (the limit in docs/SEARCH-SPACES.md)")
                }
                seeds = try items.map { try $0.seed(below: SpecLimits.seedValue) }
                guard !seeds.isEmpty, Set(seeds).count == seeds.count else { throw f.error("seeds must be a non-empty list of distinct numbers") }
            } else {
                seeds = (0..<UInt64(try f.int(min: 1, max: SpecLimits.seedCount))).map { $0 }
            }
        }
        output = try fields["output"].map { try Self.printable($0) } ?? "results/\(study)"
        budgetLocation = (fields["budget"] ?? top).location

        // One trial must fit in memory. The input shape is known here for a synthetic suite; for data read from
        // files it is not (yet), and the estimate counts a one-feature input: a lower bound, still enough to
        // refuse units far too wide for this machine.
        let memory = trialMemory(inputShape: data.synthetic.map { [$0.features] },
                                 classes: Array(repeating: data.synthetic.map { $0.classes ?? ($0.kind == .multiTask ? 4 : 10) } ?? 2,
                                                count: data.taskCount))
        if memory.bytes > SpecLimits.physicalMemory {
            throw unitsField.error(memory.refusal)
        }
    }

    /// The `training.keep` setting of a search space's text (as a run log stores it), without parsing the rest
    /// (whose data paths may no longer resolve); `.front` when absent or unreadable.
    public static func keepSetting(inText text: String) -> KeepModels {
        guard let root = try? Yams.compose(yaml: text), case .mapping(let m) = root,
              let training = m[Node("training")], case .mapping(let t) = training,
              let value = t[Node("keep")]?.string else { return .front }
        return KeepModels(rawValue: value) ?? .front
    }

    /// Whether `self` is the study of `earlier` with seeds added and nothing else changed (comments and layout
    /// aside): then every trial logged for `earlier` is a valid trial of `self`, and a run continues its log.
    public func addsSeeds(to earlier: SearchSpace) -> Bool {
        guard Set(earlier.seeds).isSubset(of: Set(seeds)), earlier.seeds != seeds,
              let a = try? Yams.compose(yaml: text), let b = try? Yams.compose(yaml: earlier.text) else { return false }
        return Self.without(a, key: "seeds") == Self.without(b, key: "seeds")
    }

    /// The model for tasks with `inputShape` and `classes`.
    public func modelSpec(inputShape: [Int], classes: [Int]) -> ModelSpec {
        ModelSpec(inputShape: inputShape, units: units, taskClasses: classes)
    }

    static func states(_ items: [YAMLField]) throws -> [SharingState] {
        let out = try items.map { f -> SharingState in
            let t = try f.string()
            guard t.count == 1, let s = SharingState(rawValue: Character(t.uppercased())) else {
                throw f.error("unknown state '\(t)'; use S (shared), T (task-specific) or A (adapter)")
            }
            return s
        }
        guard !out.isEmpty else { throw DataError.spec(file: items.first?.file ?? "", line: nil, field: "states", problem: "empty list of states") }
        return out
    }

    static func recipe(_ f: YAMLField, into base: TrainingRecipe, evalEvery: inout Int) throws -> TrainingRecipe {
        var r = base
        for (key, v) in try f.mapping(allowed: f.path == "pretrain" ? pretrainKeys : trainingKeys) {
            switch key {
            case "steps": r.steps = try v.int(min: f.path == "pretrain" ? 0 : 1, max: SpecLimits.steps)
            case "batch_size": r.batchSize = try v.int(min: 1, max: SpecLimits.batchSize)
            case "optimizer":
                let t = try v.string()
                guard let o = TrainingRecipe.OptimizerKind(rawValue: t) else { throw v.error("unknown optimizer '\(t)'; use sgd or adam") }
                r.optimizer = o
            case "lr":
                let x = try v.double()
                guard x > 0, x <= SpecLimits.learningRate else {
                    throw v.error("the learning rate must be positive and at most \(Int(SpecLimits.learningRate)); got \(x)")
                }
                r.learningRate = Float(x)
            case "momentum":
                let x = try v.double()
                guard x >= 0, x < 1 else { throw v.error("momentum must be in [0, 1); got \(x)") }
                r.momentum = Float(x)
            case "weight_decay":
                let x = try v.double()
                guard x >= 0, x < 1 else { throw v.error("weight_decay must be in [0, 1); got \(x)") }
                r.weightDecay = Float(x)
            case "schedule":
                let t = try v.string()
                guard let s = TrainingRecipe.ScheduleKind(rawValue: t) else { throw v.error("unknown schedule '\(t)'; use constant, step or cosine") }
                r.schedule = s
            case "step_every": r.stepEvery = try v.int(min: 1, max: SpecLimits.steps)
            case "gamma":
                let x = try v.double()
                guard x > 0, x <= 1 else { throw v.error("gamma (the step schedule's factor) must be in (0, 1]; got \(x)") }
                r.gamma = Float(x)
            case "warmup": r.warmup = try v.int(min: 0, max: SpecLimits.steps)
            case "eval_every": evalEvery = try v.int(min: 1, max: SpecLimits.steps)
            default: break
            }
        }
        return r
    }

    /// A name or path that ends up in file names, reports and Slurm scripts: any text without control characters.
    static func printable(_ f: YAMLField) throws -> String {
        let t = try f.string()
        if let problem = controlCharacterProblem(t) { throw f.error("the value \(problem); remove it") }
        return t
    }

    /// Why `text` cannot go into a script or a one-line message (a control character: below 0x20, or 0x7F),
    /// shown escaped; nil when it can.
    public static func controlCharacterProblem(_ text: String) -> String? {
        guard let c = text.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return nil }
        let name = c == "\n" ? "a newline" : c == "\t" ? "a tab" : c == "\r" ? "a carriage return" : String(format: "control character 0x%02X", c.value)
        return "\(text.debugDescription) contains \(name)"
    }

    /// Why `unit` is outside the limits of docs/SEARCH-SPACES.md, or nil.
    public static func unitProblem(_ unit: UnitSpec) -> String? {
        func over(_ what: String, _ v: Int, _ limit: Int) -> String? {
            v > limit ? "\(unit): \(what) \(v) is above the limit of \(limit) (docs/SEARCH-SPACES.md)" : nil
        }
        switch unit.kind {
        case let .linear(width, rank):
            return over("width", width, SpecLimits.width) ?? over("adapter rank", rank, SpecLimits.width)
        case let .conv(channels, kernel, stride, _):
            return over("channels", channels, SpecLimits.width) ?? over("kernel", kernel, SpecLimits.kernel)
                ?? over("stride", stride, SpecLimits.stride)
        case let .residual(channels, stride, blocks):
            return over("channels", channels, SpecLimits.width) ?? over("stride", stride, SpecLimits.stride)
                ?? over("blocks", blocks, SpecLimits.blocks)
        }
    }

    static func without(_ node: Node, key: String) -> Node {
        guard case var .mapping(m) = node else { return node }
        m[Node(key)] = nil
        return .mapping(m)
    }
}

extension SearchSpace {
    /// What one trial of a search space needs in memory, estimated from the units alone (no model is built):
    /// the floats of the largest allowed mask (every unit that may be task-specific counted once per task,
    /// plus the heads) times the copies training keeps — weights, gradients and the optimiser's state (SGD
    /// momentum: one, Adam: two) — plus the activations, their gradients and the convolutions' im2col buffers
    /// for one step's rows (batch size × tasks). An estimate, meant to refuse what cannot fit, not to plan.
    public struct MemoryEstimate: Sendable {
        /// Floats of the largest allowed mask.
        public var parameters: Double
        /// Copies of the parameters training keeps (weights, gradients, optimiser state).
        public var copies: Int
        public var activationBytes: Double
        /// Rows of one training step (batch size × tasks).
        public var rows: Int
        /// Whether the input shape was known; when not, a one-feature input was counted (a lower bound).
        public var inputKnown: Bool

        public var bytes: Double { 4 * parameters * Double(copies) + activationBytes }

        /// The one-line refusal when `bytes` exceeds this machine's memory.
        public var refusal: String {
            let copyNames = copies == 2 ? "weights and gradients" : copies == 3 ? "weights, gradients and momentum" : "weights, gradients and Adam's two moments"
            let count = parameters >= 1e9 ? String(format: "%.1fG", parameters / 1e9) : formatCount(Int(parameters))
            return "one trial needs \(inputKnown ? "about" : "at least") \(SpecLimits.formatBytes(bytes)) (\(count) parameters of the largest allowed mask x \(copies) copies: \(copyNames); plus \(SpecLimits.formatBytes(activationBytes)) of activations for \(rows) rows a step), more than this machine's \(SpecLimits.formatBytes(SpecLimits.physicalMemory)) of memory; use narrower units, fewer task-specific units or a smaller batch_size"
        }
    }

    /// The memory one trial needs for tasks of `classes` classes each and per-example `inputShape`
    /// (`[features]` or `[H, W, C]`; nil when unknown: a one-feature input is counted).
    public func trialMemory(inputShape: [Int]?, classes: [Int]) -> MemoryEstimate {
        let tasks = Double(max(classes.count, 1))
        var shape: [Double] = (inputShape ?? [1]).map(Double.init)
        func image() -> (h: Double, w: Double, c: Double) {
            shape.count == 3 ? (shape[0], shape[1], shape[2]) : (1, 1, shape.reduce(1, *))
        }
        /// Output side of a convolution with `k` (padding k/2) and stride `s`.
        func side(_ n: Double, _ k: Int, _ s: Int) -> Double { max(((n + 2 * Double(k / 2) - Double(k)) / Double(s)).rounded(.down) + 1, 1) }
        var parameters = 0.0
        var perRow = shape.reduce(1, *)   // floats kept per row: the input, then each unit's buffers
        for (u, unit) in units.enumerated() {
            var p = 0.0
            switch unit.kind {
            case let .linear(width, _):
                let w = Double(width)
                p = shape.reduce(1, *) * w + w
                perRow += 3 * w   // pre-activation, output, gradient
                shape = [w]
            case let .conv(channels, kernel, stride, pool):
                let (h, w, c) = image(), out = Double(channels), k = Double(kernel * kernel)
                let (ho, wo) = (side(h, kernel, stride), side(w, kernel, stride))
                p = c * out * k + 4 * out
                perRow += ho * wo * k * c + 4 * ho * wo * out   // im2col; convolution, BatchNorm, ReLU, gradient
                shape = pool ? [max((ho / 2).rounded(.down), 1), max((wo / 2).rounded(.down), 1), out] : [ho, wo, out]
                if pool { perRow += shape.reduce(1, *) }
            case let .residual(channels, stride, blocks):
                let out = Double(channels)
                for b in 0..<blocks {
                    let (h, w, c) = image()
                    let s = b == 0 ? stride : 1
                    let (ho, wo) = (side(h, 3, s), side(w, 3, s))
                    let projection = s != 1 || c != out
                    p += 9 * c * out + 9 * out * out + 8 * out + (projection ? c * out + 4 * out : 0)
                    perRow += ho * wo * 9 * (c + out) + 8 * ho * wo * out   // two im2col buffers; convolutions, BatchNorms, ReLUs, sum, gradients
                    shape = [ho, wo, out]
                }
            }
            let states = u < allowed.count ? allowed[u] : [.shared]
            parameters += states.contains(.specific) ? tasks * p : p
        }
        let features = shape.count == 3 ? shape[2] : shape.reduce(1, *)
        parameters += classes.reduce(0.0) { $0 + features * Double($1) + Double($1) }
        let copies = 2 + (training.optimizer == .adam ? 2 : (training.momentum != 0 ? 1 : 0))
        let rows = training.batchSize * max(classes.count, 1)
        return MemoryEstimate(parameters: parameters, copies: copies, activationBytes: 4 * Double(rows) * perRow, rows: rows,
                              inputKnown: inputShape != nil)
    }
}
