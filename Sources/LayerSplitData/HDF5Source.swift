import Foundation
import LayerSplitStore

/// Reads a task's examples from an HDF5 file through LayerSplitStore: inputs in a dataset `N x ...` (uint8
/// pixels become v / 255 as in IDX; float32 and other numeric types keep their values) and integer labels in a
/// dataset `N`.
enum HDF5Source {
    /// The train and test splits: the test split from `testX`/`testY` when given, otherwise `testFraction` of
    /// the examples carved out (class-stratified, from `seed`).
    static func load(file: String, x: String, y: String, testX: String?, testY: String?, testFraction: Double,
                     layout: HDF5Layout? = nil, classes: Int?, seed: UInt64) throws -> (train: LabeledSet, test: LabeledSet) {
        do {
            let h5 = try HDF5File(opening: file)
            defer { try? h5.close() }
            let name = (file as NSString).lastPathComponent
            var train = try split(h5, name: "\(name)/train", x: x, y: y, layout: layout, classes: classes)
            var test: LabeledSet
            if let testX, let testY {
                test = try split(h5, name: "\(name)/test", x: testX, y: testY, layout: layout, classes: classes ?? train.classes,
                                 classesFromTrain: classes == nil)
                guard test.shape == train.shape else {
                    throw DataError.file(path: file, problem: "\(testX): examples have shape \(test.shape) but \(x)'s have \(train.shape)")
                }
            } else {
                let (kept, carved) = Sampling.stratifiedSplit(labels: train.y, classes: train.classes, fraction: testFraction, seed: seed)
                test = train.subset(carved, name: "\(name)/test")
                train = train.subset(kept)
            }
            return (train, test)
        } catch let e as StoreError {
            throw DataError.file(path: file, problem: e.object.map { "\($0): \(e.reason)" } ?? e.reason)
        }
    }

    private static func split(_ h5: HDF5File, name: String, x: String, y: String, layout: HDF5Layout?, classes: Int?,
                              classesFromTrain: Bool = false) throws -> LabeledSet {
        let file = h5.path
        let xInfo = try h5.info(of: x)
        guard xInfo.shape.count >= 2 else {
            throw DataError.file(path: file, problem: "\(x): inputs need at least 2 dimensions (N x ...), this dataset has shape \(xInfo.shape)")
        }
        guard xInfo.elementType.isInteger || xInfo.elementType.isFloat else {
            throw DataError.file(path: file, problem: "\(x): holds \(xInfo.elementType) values; inputs must be numbers (float32 or uint8)")
        }
        let yInfo = try h5.info(of: y)
        guard yInfo.shape.count == 1 || (yInfo.shape.count == 2 && yInfo.shape[1] == 1) else {
            throw DataError.file(path: file, problem: "\(y): labels need shape [N], this dataset has shape \(yInfo.shape)")
        }
        guard yInfo.elementType.isInteger else {
            throw DataError.file(path: file, problem: "\(y): labels must be integers; this dataset holds \(yInfo.elementType) values")
        }
        guard yInfo.shape[0] == xInfo.shape[0] else {
            throw DataError.file(path: file, problem: "\(y) has \(yInfo.shape[0]) labels but \(x) has \(xInfo.shape[0]) examples; the counts must match")
        }
        var dims = Array(xInfo.shape.dropFirst())
        let order: HDF5Layout?
        if xInfo.shape.count == 4 {
            guard let l = layout ?? HDF5Layout.detect(xInfo.shape) else {
                throw DataError.file(path: file, problem: "\(x): inputs of shape \(xInfo.shape) could be [N, C, H, W] or [N, H, W, C] (\(Set([1, 3]).contains(xInfo.shape[1]) ? "both" : "neither") of dimensions 1 and 3 are 1 or 3, the usual channel counts); say which with 'layout: nchw' or 'layout: nhwc' in the source")
            }
            order = l
        } else {
            if let layout {
                throw DataError.file(path: file, problem: "\(x): 'layout: \(layout.rawValue)' is for 4-dimensional image inputs ([N, C, H, W] or [N, H, W, C]); this dataset has shape \(xInfo.shape)")
            }
            order = nil
        }
        var values: [Float]
        if xInfo.elementType == .uint8 {
            values = try h5.readUInt8(x).values.map { Float($0) / 255 }
        } else {
            values = try h5.readFloats(x).values
        }
        if order == .nchw {
            values = nhwc(fromNCHW: values, shape: xInfo.shape)
            dims = [dims[1], dims[2], dims[0]]
        }
        let labels = try h5.readInt64(y).values.map { Int(clamping: $0) }
        let yv = try IDXFolder.checkedLabels(labels, path: "\(file): \(y)", classes: classes, classesFromTrain: classesFromTrain)
        let k = classes ?? (Int(yv.max() ?? -1) + 1)
        return LabeledSet(name: name, shape: IDXFolder.exampleShape(dims), x: values, y: yv, classes: k)
    }

    /// `values` of shape `[N, C, H, W]` reordered to `[N, H, W, C]`.
    static func nhwc(fromNCHW values: [Float], shape: [Int]) -> [Float] {
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let plane = h * w, example = c * plane
        var out = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for e in 0..<n {
                    let base = e * example
                    for ch in 0..<c {
                        for p in 0..<plane { dst[base + p * c + ch] = src[base + ch * plane + p] }
                    }
                }
            }
        }
        return out
    }
}
