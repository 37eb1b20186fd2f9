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
                               "step_every", "gamma", "warmup", "eval_every"]
    static let pretrainKeys = ["init"] + trainingKeys.filter { $0 != "eval_every" }

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
            throw DataError.spec(file: file, line: nil, field: "(file)", problem: "not valid YAML: \(e)")
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
        study = try fields["study"]?.string() ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent

        // Model.
        let model = try required("model")
        var units: [UnitSpec] = []
        for (key, f) in try model.mapping(allowed: Self.modelKeys) where key == "units" {
            units = try f.sequence().map { u in
                do { return try UnitSpec(parsing: try u.string()) } catch let e as EngineError { throw u.error("\(e)") }
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

        // Budget.
        budget = .unlimited
        if let f = fields["budget"], f.node != Node("none"), f.text?.lowercased() != "none" {
            let entries = try f.mapping(allowed: Self.budgetKeys, what: "a budget: max_params or max_specific_fraction")
            guard entries.count == 1, let (key, v) = entries.first else { throw f.error("give exactly one of max_params, max_specific_fraction") }
            if key == "max_params" {
                guard let n = parseCount(try v.string()), n > 0 else { throw v.error("expected a parameter count such as 1.2M, 350k or 120000") }
                budget = .maxParams(n)
            } else {
                let x = try v.double()
                guard x >= 0 else { throw v.error("must be 0 or more (0.25 allows 25% more parameters than all-shared)") }
                budget = .maxSpecificFraction(x)
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
                    case "count": randomCount = try v.int(min: 1)
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
                            if hk == "min_steps" { minSteps = try hv.int(min: 1) } else { eta = try hv.int(min: 2) }
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
        if let f = fields["training"] { recipe = try Self.recipe(f, into: recipe, evalEvery: &evalEvery) }
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
                seeds = try f.sequence().map { try $0.seed() }
                guard !seeds.isEmpty, Set(seeds).count == seeds.count else { throw f.error("seeds must be a non-empty list of distinct numbers") }
            } else {
                seeds = (0..<UInt64(try f.int(min: 1))).map { $0 }
            }
        }
        output = try fields["output"]?.string() ?? "results/\(study)"
        budgetLocation = (fields["budget"] ?? top).location
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
            case "steps": r.steps = try v.int(min: f.path == "pretrain" ? 0 : 1)
            case "batch_size": r.batchSize = try v.int(min: 1)
            case "optimizer":
                let t = try v.string()
                guard let o = TrainingRecipe.OptimizerKind(rawValue: t) else { throw v.error("unknown optimizer '\(t)'; use sgd or adam") }
                r.optimizer = o
            case "lr":
                let x = try v.double()
                guard x > 0 else { throw v.error("the learning rate must be positive") }
                r.learningRate = Float(x)
            case "momentum": r.momentum = Float(try v.double())
            case "weight_decay": r.weightDecay = Float(try v.double())
            case "schedule":
                let t = try v.string()
                guard let s = TrainingRecipe.ScheduleKind(rawValue: t) else { throw v.error("unknown schedule '\(t)'; use constant, step or cosine") }
                r.schedule = s
            case "step_every": r.stepEvery = try v.int(min: 1)
            case "gamma": r.gamma = Float(try v.double())
            case "warmup": r.warmup = try v.int(min: 0)
            case "eval_every": evalEvery = try v.int(min: 1)
            default: break
            }
        }
        return r
    }

    static func without(_ node: Node, key: String) -> Node {
        guard case var .mapping(m) = node else { return node }
        m[Node(key)] = nil
        return .mapping(m)
    }
}
