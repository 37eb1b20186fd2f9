import Foundation

/// A folder in the MNIST family's layout: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each optionally gzip-compressed (`.gz`). The names
/// `train-images.idx3-ubyte` and a `test-` prefix instead of `t10k-` are accepted too; where a plain and a `.gz`
/// file both exist the plain one is read.
public enum IDXFolder {
    /// The four files of a folder.
    public struct Files: Sendable, Hashable {
        public var trainImages, trainLabels, testImages, testLabels: String
    }

    /// Finds the four files in `folder`; a missing folder or file is an error that says how to get the data.
    public static func files(in folder: String) throws -> Files {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) else {
            throw DataError.file(path: folder, problem: "no such folder; \(installHint(for: folder))")
        }
        guard isDirectory.boolValue else {
            throw DataError.file(path: folder, problem: "is a file; an IDX source is a folder holding train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz)")
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
        func find(_ splits: [String], _ kind: String) throws -> String {
            let matches = names.filter { name in
                splits.contains { name.hasPrefix("\($0)-\(kind)") } && name.contains("idx")
            }
            guard let pick = matches.first(where: { !$0.hasSuffix(".gz") }) ?? matches.first else {
                throw DataError.file(path: folder, problem: "no \(splits[0])-\(kind)-idx…-ubyte(.gz) file here (found: \(names.isEmpty ? "nothing" : names.joined(separator: ", "))); \(installHint(for: folder))")
            }
            return (folder as NSString).appendingPathComponent(pick)
        }
        return Files(trainImages: try find(["train"], "images"), trainLabels: try find(["train"], "labels"),
                     testImages: try find(["t10k", "test"], "images"), testLabels: try find(["t10k", "test"], "labels"))
    }

    /// Reads the train and test splits of `folder`.
    ///
    /// uint8 pixels become floats in [0, 1] (divided by 255); other element types keep their values. An image
    /// file `N x H x W` gives examples of shape `[H, W, 1]`, `N x H x W x C` gives `[H, W, C]`, `N x F` gives
    /// `[F]`, and more dimensions are flattened to `[F]`. The number of classes is `classes` when given (every
    /// label must be below it), otherwise one more than the largest training label (every test label must be
    /// below it).
    public static func load(_ folder: String, classes: Int? = nil) throws -> (train: LabeledSet, test: LabeledSet) {
        let f = try files(in: folder)
        let name = (folder as NSString).lastPathComponent
        let train = try labeledSet(name: "\(name)/train", images: f.trainImages, labels: f.trainLabels, classes: classes)
        let test = try labeledSet(name: "\(name)/test", images: f.testImages, labels: f.testLabels,
                                  classes: classes ?? train.classes, classesFromTrain: classes == nil)
        guard train.shape == test.shape else {
            throw DataError.file(path: f.testImages, problem: "examples have shape \(test.shape) but the train split's (\(f.trainImages)) have \(train.shape)")
        }
        return (train, test)
    }

    /// One split from an image file and a label file; every mismatch is an error naming the file at fault.
    public static func labeledSet(name: String, images imagesPath: String, labels labelsPath: String, classes: Int? = nil,
                                  classesFromTrain: Bool = false) throws -> LabeledSet {
        let images = try IDX.read(contentsOf: imagesPath)
        let labels = try IDX.read(contentsOf: labelsPath)
        return try labeledSet(name: name, images: images, imagesPath: imagesPath, labels: labels, labelsPath: labelsPath,
                              classes: classes, classesFromTrain: classesFromTrain)
    }

    /// One split from arrays already read (`imagesPath` and `labelsPath` name them in errors).
    public static func labeledSet(name: String, images: IDXArray, imagesPath: String, labels: IDXArray, labelsPath: String,
                                  classes: Int? = nil, classesFromTrain: Bool = false) throws -> LabeledSet {
        guard images.shape.count >= 2 else {
            throw DataError.file(path: imagesPath, problem: "an image file needs at least 2 dimensions (N x ...), this one has shape \(images.shape)")
        }
        guard labels.shape.count == 1 else {
            throw DataError.file(path: labelsPath, problem: "a label file has 1 dimension (N), this one has shape \(labels.shape)")
        }
        guard labels.shape[0] == images.shape[0] else {
            throw DataError.file(path: labelsPath, problem: "has \(labels.shape[0]) labels but the image file \(imagesPath) has \(images.shape[0]) images; the counts must match")
        }
        guard let values = labels.integerValues() else {
            throw DataError.file(path: labelsPath, problem: "labels must be integers; this file holds \(labels.type) values")
        }
        let y = try checkedLabels(values, path: labelsPath, classes: classes, classesFromTrain: classesFromTrain)
        let k = classes ?? (Int(y.max() ?? -1) + 1)
        let shape = exampleShape(Array(images.shape.dropFirst()))
        return LabeledSet(name: name, shape: shape, x: images.floatValues(bytesToUnit: true), y: y, classes: k)
    }

    /// Labels as Int32, every one in `0..<classes` when given.
    static func checkedLabels(_ values: [Int], path: String, classes: Int?, classesFromTrain: Bool = false) throws -> [Int32] {
        var y = [Int32](repeating: 0, count: values.count)
        for (i, v) in values.enumerated() {
            guard v >= 0 else {
                throw DataError.file(path: path, problem: "label \(v) of example \(i) is negative; labels are class indices 0, 1, 2, ...")
            }
            if let classes, v >= classes {
                let why = classesFromTrain
                    ? "the train split's labels are 0..<\(classes); declare 'classes:' in the task when the train split lacks a class"
                    : "the task has \(classes) classes (0..<\(classes))"
                throw DataError.file(path: path, problem: "label \(v) of example \(i) is out of range: \(why)")
            }
            guard v <= 1 << 20 else {
                throw DataError.file(path: path, problem: "label \(v) of example \(i) is out of range (more than 2^20 classes)")
            }
            y[i] = Int32(v)
        }
        return y
    }

    /// The per-example shape for an array's trailing dimensions: `[H, W]` → `[H, W, 1]`, `[H, W, C]` and `[F]`
    /// as they are, more dimensions flattened.
    static func exampleShape(_ dims: [Int]) -> [Int] {
        switch dims.count {
        case 0: [1]
        case 1: dims
        case 2: dims + [1]
        case 3: dims
        default: [dims.reduce(1, *)]
        }
    }

    /// How to get the data a missing path refers to.
    static func installHint(for path: String) -> String {
        let p = path.lowercased()
        if p.contains("fashion") {
            return "install Fashion-MNIST with 'make setup' (apt-get install dataset-fashion-mnist; it goes to /usr/share/datasets/fashion-mnist)"
        }
        if p.contains("shared/data") || p.contains("mnist-tiny") || p.contains("opencv-digits") {
            return "the real digit sets (mnist-tiny, opencv-digits) are in the 'shared' repository: clone it next to this one so that ../shared/data exists (see ../shared/data/README.md)"
        }
        return "expected a folder with train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz); relative paths are resolved against the search-space file's folder"
    }
}
