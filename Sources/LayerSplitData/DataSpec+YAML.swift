import Foundation
import Yams

/// The upper limits of the numbers a search space gives (docs/SEARCH-SPACES.md, "Limits"). Far above any
/// sensible value, and low enough that no value can overflow a count, make an allocation fail or keep a run
/// going for years: every number is checked against them where it is parsed, with a one-line error.
public enum SpecLimits {
    /// Training and pretraining steps, `step_every`, `warmup`, `eval_every`, successive halving's `min_steps`.
    public static let steps = 1_000_000_000
    /// Rows per task per step.
    public static let batchSize = 65_536
    /// A linear unit's width, a conv or residual unit's channels, a linear adapter's rank.
    public static let width = 65_536
    /// A convolution's kernel size.
    public static let kernel = 31
    /// A convolution's stride.
    public static let stride = 64
    /// Residual blocks in one unit.
    public static let blocks = 64
    /// Units in a model.
    public static let units = 64
    /// Masks the allowed states make before any budget (the product of the allowed-state counts), and masks a
    /// random strategy draws.
    public static let masks = 1 << 20
    /// Seeds of a study.
    public static let seedCount = 10_000
    /// Seeds are below this (2^32).
    public static let seedValue: UInt64 = 1 << 32
    /// Tasks of a synthetic suite.
    public static let tasks = 1_000
    /// Classes of a task (also a synthetic suite's clusters; class numbers are below it).
    public static let classes = 65_536
    /// Features of a synthetic suite's examples.
    public static let features = 65_536
    /// Examples per task of a synthetic suite's train or test set, and of a subsample.
    public static let examples = 10_000_000
    /// Successive halving's eta.
    public static let eta = 100
    /// The largest learning rate.
    public static let learningRate = 100.0

    /// This machine's physical memory in bytes, which no estimate may exceed.
    public static var physicalMemory: Double { Double(ProcessInfo.processInfo.physicalMemory) }

    /// `bytes` for people: `612 GB`, `1.5 GB`, `310 MB`.
    public static func formatBytes(_ bytes: Double) -> String {
        if bytes >= 10e9 { return String(format: "%.0f GB", bytes / 1e9) }
        if bytes >= 1e9 { return String(format: "%.1f GB", bytes / 1e9) }
        return String(format: "%.0f MB", bytes / 1e6)
    }
}

/// A node of a search-space file with its field path, for parsing with precise errors: every accessor throws
/// `DataError.spec` naming the file, the node's line and the field path (`data.tasks[1].source.idx`).
///
/// Used by `DataSpec` for the `data:` section and by the search-space parser for the other sections, so that
/// every section reports errors the same way.
public struct YAMLField {
    public let node: Node
    /// The field path, e.g. `data.tasks[1].source`.
    public let path: String
    /// The search-space file, as named in errors.
    public let file: String

    public init(node: Node, path: String, file: String) {
        self.node = node
        self.path = path
        self.file = file
    }

    /// The node's line in the file (1-based), when known.
    public var line: Int? { node.mark?.line }
    public var location: SpecLocation { SpecLocation(file: file, line: line, field: path) }
    /// An error at this field.
    public func error(_ problem: String) -> DataError { location.error(problem) }

    /// The path of the field `key` under this one (just `key` under the file's root, whose path is empty).
    public func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public var kindName: String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar: "a single value"
        }
    }

    /// The scalar's text, or nil for mappings and lists.
    public var text: String? {
        if case let .scalar(s) = node { return s.string }
        return nil
    }

    /// The entries of a mapping, in order; a key outside `allowed` is an error listing the valid keys, and so is
    /// a key given twice. `what` names the expected mapping in the error when the node is not one.
    public func mapping(allowed: [String], what: String? = nil) throws -> [(key: String, field: YAMLField)] {
        guard case let .mapping(m) = node else {
            throw error("expected \(what ?? "a mapping") with keys \(allowed.joined(separator: ", ")); got \(kindName)")
        }
        var seen = Set<String>()
        var out: [(String, YAMLField)] = []
        for (k, v) in m {
            let key = k.string ?? "?"
            let keyField = YAMLField(node: k, path: childPath(key), file: file)
            guard allowed.contains(key) else {
                throw keyField.error("unknown key '\(key)'; valid keys here: \(allowed.joined(separator: ", "))")
            }
            guard seen.insert(key).inserted else { throw keyField.error("'\(key)' is given twice") }
            out.append((key, YAMLField(node: v, path: childPath(key), file: file)))
        }
        return out
    }

    public func sequence() throws -> [YAMLField] {
        guard case let .sequence(s) = node else { throw error("expected a list; got \(kindName)") }
        return s.enumerated().map { YAMLField(node: $1, path: "\(path)[\($0)]", file: file) }
    }

    public func string() throws -> String {
        guard let t = text else { throw error("expected a single value; got \(kindName)") }
        guard !t.isEmpty, node.null == nil else { throw error("expected a value; got nothing") }
        return t
    }

    /// A whole number from `min` to `max`; the error names the range (and the documented limit for `max`).
    public func int(min: Int = Int.min, max: Int = Int.max) throws -> Int {
        let t = try string()
        let digits = t.replacingOccurrences(of: "_", with: "")
        guard let v = Int(digits) else {
            let unsigned = digits.hasPrefix("+") ? digits.dropFirst() : Substring(digits)
            if !unsigned.isEmpty, unsigned.allSatisfy({ ("0"..."9").contains($0) }) {
                throw error("'\(t)' is too large: at most \(max)" + (max < Int.max ? " (the limit in docs/SEARCH-SPACES.md)" : ""))
            }
            throw error("expected a whole number; got '\(t)'")
        }
        guard v >= min else { throw error("must be at least \(min); got \(v)") }
        guard v <= max else { throw error("must be at most \(max) (the limit in docs/SEARCH-SPACES.md); got \(v)") }
        return v
    }

    /// A seed: a whole number from 0 up to (not including) `below`.
    public func seed(below: UInt64? = nil) throws -> UInt64 {
        let t = try string()
        guard let v = UInt64(t.replacingOccurrences(of: "_", with: "")) else {
            throw error("expected a seed (a whole number, 0 or more\(below.map { ", below \($0)" } ?? "")); got '\(t)'")
        }
        if let below, v >= below { throw error("a seed must be below \(below) (2^32); got \(v)") }
        return v
    }

    public func double() throws -> Double {
        let t = try string()
        guard let v = Double(t.replacingOccurrences(of: "_", with: "")), v.isFinite else { throw error("expected a number; got '\(t)'") }
        return v
    }

    public func bool() throws -> Bool {
        switch try string().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let t: throw error("expected true or false; got '\(t)'")
        }
    }

    /// Class numbers: whole numbers from 0 to `SpecLimits.classes` − 1.
    public func ints() throws -> [Int] { try sequence().map { try $0.int(min: 0, max: SpecLimits.classes - 1) } }
}

extension DataSpec {
    /// The keys of the `data:` section, of a task, of a source and of `synthetic:`.
    public static let sectionKeys = ["normalize", "validation", "seed", "tasks", "synthetic"]
    public static let taskKeys = ["name", "source", "transform", "labels", "subsample", "classes"]
    public static let idxSourceKeys = ["idx"]
    public static let hdf5SourceKeys = ["hdf5", "x", "y", "test_x", "test_y", "test_fraction", "layout"]
    public static let syntheticKeys = ["kind", "tasks", "classes", "features", "train", "test", "noise", "clusters"]

    /// Parses the value of a search space's `data:` key. `file` names the search-space file in errors and
    /// relative paths are resolved against its folder (or `baseDirectory` when given).
    ///
    /// Every error is a `DataError.spec` naming the file, the line and the field path, e.g.
    /// `study.yaml:14: data.tasks[1].transform: unknown transform 'rotat'; known: permute, invert, ...`.
    public init(node: Node, file: String, baseDirectory: String? = nil) throws {
        self.file = file
        let fileURL = URL(fileURLWithPath: file, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true))
        self.baseDirectory = baseDirectory ?? fileURL.standardizedFileURL.deletingLastPathComponent().path
        let root = YAMLField(node: node, path: "data", file: file)
        location = root.location
        var hasTasks = false
        for (key, field) in try root.mapping(allowed: Self.sectionKeys, what: "the data section: a mapping") {
            switch key {
            case "normalize":
                let t = try field.string()
                guard let n = Normalization(rawValue: t) else {
                    throw field.error("unknown normalisation '\(t)'; use one of \(Normalization.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                normalize = n
            case "validation":
                let v = try field.double()
                guard v >= 0 && v < 1 else { throw field.error("the validation fraction must be in [0, 1); got \(v)") }
                validation = v
            case "seed":
                seed = try field.seed()
            case "tasks":
                hasTasks = true
                let items = try field.sequence()
                guard !items.isEmpty else { throw field.error("the task list is empty") }
                tasks = try items.map { try Self.parseTask($0, base: self.baseDirectory) }
                var names: [String: Int] = [:]
                for (i, t) in tasks.enumerated() {
                    if let j = names[t.name] {
                        throw items[i].error("task name '\(t.name)' is used by data.tasks[\(j)] too; names must differ")
                    }
                    names[t.name] = i
                }
            case "synthetic":
                synthetic = try Self.parseSynthetic(field)
            default:
                break
            }
        }
        guard hasTasks != (synthetic != nil) else {
            throw root.error(hasTasks ? "give either 'tasks:' or 'synthetic:', not both"
                                      : "no tasks: give 'tasks:' (a list of tasks) or 'synthetic:' (a built-in suite)")
        }
    }

    /// Parses the `data:` section of the search-space file at `path` (other top-level keys are left to their
    /// own parsers).
    public static func load(file path: String) throws -> DataSpec {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DataError.file(path: path, problem: FileManager.default.fileExists(atPath: path) ? "cannot be read as UTF-8 text" : "no such file")
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses the `data:` section of a whole search-space file given as text.
    public static func parse(yaml: String, file: String, baseDirectory: String? = nil) throws -> DataSpec {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let e as YamlError {
            throw DataError.yamlSyntax(e, file: file)
        }
        guard let root, case let .mapping(m) = root else {
            throw DataError.spec(file: file, line: root?.mark?.line, field: "(file)", problem: "expected a mapping with a 'data:' key")
        }
        guard let data = m["data"] else {
            throw DataError.spec(file: file, line: 1, field: "data", problem: "no 'data:' section in this file")
        }
        return try DataSpec(node: data, file: file, baseDirectory: baseDirectory)
    }

    // MARK: - Tasks

    static func parseTask(_ field: YAMLField, base: String) throws -> TaskSpec {
        var name: String?
        var source: DataSource?
        var task = TaskSpec(name: "", source: .idx(folder: ""), locations: ["task": field.location])
        for (key, f) in try field.mapping(allowed: taskKeys, what: "a task: a mapping") {
            task.locations[key] = f.location
            switch key {
            case "name": name = try f.string()
            case "source": source = try parseSource(f, base: base)
            case "transform": task.transforms = try parseTransforms(f)
            case "labels": task.labels = try parseLabels(f)
            case "subsample": task.subsample = try parseSubsample(f)
            case "classes": task.classes = try f.int(min: 2, max: SpecLimits.classes)
            default: break
            }
        }
        guard let name else { throw field.error("a task needs a 'name:'") }
        guard let source else { throw field.error("task '\(name)' needs a 'source:' ({idx: FOLDER} or {hdf5: FILE})") }
        task.name = name
        task.source = source
        // Check what can be checked without reading data.
        if let classes = task.classes, task.labels != .identity {
            do { _ = try task.labels.mapping(sourceClasses: classes) } catch let e as DataError {
                throw task.error("labels", "\(e)")
            }
        }
        return task
    }

    static func resolve(_ path: String, base: String) -> String {
        let expanded = (path as NSString).expandingTildeInPath
        return URL(fileURLWithPath: expanded, relativeTo: URL(fileURLWithPath: base, isDirectory: true)).standardizedFileURL.path
    }

    static func parseSource(_ field: YAMLField, base: String) throws -> DataSource {
        guard case let .mapping(m) = field.node else {
            throw field.error("expected {idx: FOLDER} or {hdf5: FILE, x: /x, y: /y}; got \(field.kindName)")
        }
        let keys = m.keys.compactMap(\.string)
        if keys.contains("idx") {
            let entries = try field.mapping(allowed: idxSourceKeys, what: "an IDX source")
            return .idx(folder: resolve(try entries[0].field.string(), base: base))
        }
        if keys.contains("hdf5") {
            var file = "", x = "/x", y = "/y", testX: String?, testY: String?, fraction = 0.2
            var fractionField: YAMLField?
            var layout: HDF5Layout?
            for (key, f) in try field.mapping(allowed: hdf5SourceKeys, what: "an HDF5 source") {
                switch key {
                case "hdf5": file = resolve(try f.string(), base: base)
                case "x": x = try f.string()
                case "y": y = try f.string()
                case "test_x": testX = try f.string()
                case "test_y": testY = try f.string()
                case "test_fraction":
                    fraction = try f.double()
                    fractionField = f
                    guard fraction > 0 && fraction < 1 else { throw f.error("the test fraction must be in (0, 1); got \(fraction)") }
                case "layout":
                    let t = try f.string()
                    guard let l = HDF5Layout(rawValue: t.lowercased()) else {
                        throw f.error("unknown layout '\(t)'; use nchw ([N, C, H, W], PyTorch's) or nhwc ([N, H, W, C])")
                    }
                    layout = l
                default: break
                }
            }
            guard (testX == nil) == (testY == nil) else {
                throw field.error("give both test_x and test_y (the test split's inputs and labels), or neither to carve test_fraction out of x")
            }
            if testX != nil, let fractionField {
                throw fractionField.error("test_fraction is for files without a test split; this source names test_x and test_y")
            }
            return .hdf5(file: file, x: x, y: y, testX: testX, testY: testY, testFraction: fraction, layout: layout)
        }
        throw field.error("a source is {idx: FOLDER} or {hdf5: FILE, x: /x, y: /y, test_x: ..., test_y: ...}; got keys \(keys.joined(separator: ", "))")
    }

    static func parseTransforms(_ field: YAMLField) throws -> [InputTransform] {
        if case .sequence = field.node { return try field.sequence().map(parseTransform) }
        return [try parseTransform(field)]
    }

    static func parseTransform(_ field: YAMLField) throws -> InputTransform {
        let known = InputTransform.names.joined(separator: ", ")
        if let name = field.text {
            switch name {
            case "invert": return .invert
            case "": throw field.error("expected a transform (\(known)); got nothing")
            default:
                throw field.error(InputTransform.names.contains(name)
                    ? "'\(name)' needs a value: \(name): ..." : "unknown transform '\(name)'; known: \(known)")
            }
        }
        guard case let .mapping(m) = field.node, m.count == 1, let name = m.keys.first?.string else {
            throw field.error("a transform is one of {permute: SEED}, invert, {rotate: DEGREES}, {flip: horizontal|vertical}, {contrast: FACTOR}, {noise: STD}; or a list of them, applied in order")
        }
        guard InputTransform.names.contains(name) else {
            throw YAMLField(node: m.keys.first!, path: field.childPath(name), file: field.file)
                .error("unknown transform '\(name)'; known: \(known)")
        }
        let v = YAMLField(node: m.values.first!, path: field.childPath(name), file: field.file)
        switch name {
        case "permute":
            return .permute(seed: try v.seed())
        case "invert":
            guard try v.bool() else { throw v.error("'invert: false' does nothing; leave the transform out") }
            return .invert
        case "rotate":
            return .rotate(degrees: try v.double())
        case "flip":
            let t = try v.string()
            guard t == "horizontal" || t == "vertical" else { throw v.error("flip is horizontal or vertical; got '\(t)'") }
            return .flip(horizontal: t == "horizontal")
        case "contrast":
            let f = try v.double()
            guard f > 0 else { throw v.error("the contrast factor must be positive (1 leaves the image as it is); got \(f)") }
            return .contrast(factor: Float(f))
        default:  // noise
            if case .mapping = v.node {
                var std: Double?, seed: UInt64?
                for (key, f) in try v.mapping(allowed: ["std", "seed"], what: "noise settings") {
                    if key == "std" { std = try f.double() } else { seed = try f.seed() }
                }
                guard let std else { throw v.error("noise needs 'std:'") }
                guard std >= 0 else { throw v.error("noise std must be 0 or more; got \(std)") }
                return .noise(std: Float(std), seed: seed)
            }
            let std = try v.double()
            guard std >= 0 else { throw v.error("noise std must be 0 or more; got \(std)") }
            return .noise(std: Float(std), seed: nil)
        }
    }

    static func parseLabels(_ field: YAMLField) throws -> LabelFunction {
        let known = "{subset: [CLASSES]}, {groups: [[CLASSES], ...]} or parity"
        if let name = field.text {
            guard name == "parity" else { throw field.error("unknown label function '\(name)'; use \(known)") }
            return .parity
        }
        let entries = try field.mapping(allowed: LabelFunction.names, what: "a label function (\(known))")
        guard entries.count == 1, let (key, v) = entries.first else { throw field.error("give one label function: \(known)") }
        switch key {
        case "subset":
            let classes = try v.ints()
            guard classes.count >= 2 else { throw v.error("a subset needs at least 2 classes") }
            guard Set(classes).count == classes.count else { throw v.error("a class is listed twice") }
            return .subset(classes)
        case "groups":
            let groups = try v.sequence().map { try $0.ints() }
            guard groups.count >= 2 else { throw v.error("groups need at least 2 groups") }
            if let k = groups.firstIndex(where: \.isEmpty) { throw v.error("group \(k) is empty") }
            let all = groups.flatMap { $0 }
            guard Set(all).count == all.count else { throw v.error("a class is in more than one group") }
            return .groups(groups)
        default:
            guard try v.bool() else { throw v.error("'parity: false' does nothing; leave 'labels:' out") }
            return .parity
        }
    }

    static func parseSubsample(_ field: YAMLField) throws -> Subsample {
        if field.text != nil { return Subsample(train: try field.int(min: 1, max: SpecLimits.examples)) }
        var s = Subsample()
        for (key, f) in try field.mapping(allowed: ["train", "validation", "test"], what: "a number of train examples, or a mapping") {
            let n = try f.int(min: 1, max: SpecLimits.examples)
            switch key {
            case "train": s.train = n
            case "validation": s.validation = n
            default: s.test = n
            }
        }
        return s
    }

    static func parseSynthetic(_ field: YAMLField) throws -> Synthetic {
        let entries = try field.mapping(allowed: syntheticKeys, what: "a synthetic suite")
        guard let kindField = entries.first(where: { $0.key == "kind" })?.field else {
            throw field.error("a synthetic suite needs 'kind:' (\(Synthetic.Kind.allCases.map(\.rawValue).joined(separator: " or ")))")
        }
        let kindText = try kindField.string()
        guard let kind = Synthetic.Kind(rawValue: kindText) else {
            throw kindField.error("unknown suite '\(kindText)'; use \(Synthetic.Kind.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        var s = Synthetic(kind: kind)
        for (key, f) in entries {
            switch key {
            case "tasks": s.tasks = try f.int(min: 1, max: SpecLimits.tasks)
            case "classes": s.classes = try f.int(min: 2, max: SpecLimits.classes)
            case "features": s.features = try f.int(min: 1, max: SpecLimits.features)
            case "train": s.train = try f.int(min: 1, max: SpecLimits.examples)
            case "test": s.test = try f.int(min: 1, max: SpecLimits.examples)
            case "noise":
                let n = try f.double()
                guard n >= 0 else { throw f.error("noise must be 0 or more; got \(n)") }
                s.noise = Float(n)
            case "clusters":
                guard kind == .multiTask else { throw f.error("'clusters' is for the multi-task suite") }
                s.clusters = try f.int(min: 2, max: SpecLimits.classes)
            default: break
            }
        }
        if kind == .multiTask, (s.clusters ?? 16) < (s.classes ?? 4) {
            throw field.error("the multi-task suite needs at least as many clusters (\(s.clusters ?? 16)) as classes (\(s.classes ?? 4)); set 'clusters:'")
        }
        // The examples are made in memory (with a validation split carved from train, and normalised copies):
        // refuse a suite that cannot fit rather than fail to allocate it.
        let floats = Double(s.tasks) * Double(s.train + s.test) * Double(s.features)
        let bytes = 2 * 4 * floats
        if bytes > SpecLimits.physicalMemory {
            throw field.error("the suite needs about \(SpecLimits.formatBytes(bytes)) (tasks \(s.tasks) x (train \(s.train) + test \(s.test)) x features \(s.features) floats, twice), more than this machine's \(SpecLimits.formatBytes(SpecLimits.physicalMemory)) of memory; lower train, test or features")
        }
        return s
    }
}

extension DataError {
    /// A YAML syntax error as one line at the line it is on, without Yams's multi-line snippet:
    /// `space.yaml:7: (file): not valid YAML: mapping values are not allowed in this context (column 9)`.
    public static func yamlSyntax(_ error: YamlError, file: String) -> DataError {
        let problem: String
        var line: Int?
        switch error {
        case let .scanner(context, text, mark, _), let .parser(context, text, mark, _), let .composer(context, text, mark, _):
            line = mark.line
            let within = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
            problem = "\(text) (column \(mark.column))\(within)"
        case let .reader(text, offset, _, yaml):
            if let offset { line = yaml.utf8.prefix(offset).reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 } }
            problem = text
        default:
            problem = "\(error)".split(whereSeparator: \.isNewline).joined(separator: " ")
        }
        return .spec(file: file, line: line, field: "(file)", problem: "not valid YAML: \(problem)")
    }
}
