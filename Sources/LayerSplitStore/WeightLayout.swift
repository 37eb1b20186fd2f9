import LayerSplitEngine

/// How a model's tensors are laid out in a weights file: PyTorch's layouts, so that an h5py user can copy a
/// dataset straight into a `state_dict` (see docs/FORMATS.md).
///
/// Two kinds of tensor differ from LayerSplit's own (NHWC) layouts and are permuted on the way in and out:
/// - convolution weights: LayerSplit `[out, kh, kw, in]` ↔ file `[out, in, kh, kw]` (PyTorch `Conv2d`);
/// - the weight of a linear unit whose input is an image `[H, W, C]`: LayerSplit reads the image flattened in
///   (h, w, c) order, PyTorch (`nn.Flatten` of NCHW) in (c, h, w) order, so the file's columns are in
///   (c, h, w) order. The same holds for the input factor V `[r, in]` of such a unit's adapters
///   (`u02/t1/adapter.V`).
/// Adapters' 1x1 convolutions (`adapter.weight`, `block0.adapter1.weight`) are convolution weights like any
/// other (`[out, 1, 1, in]` ↔ `[out, in, 1, 1]`). Everything else (linear `[out, in]`, an adapter's U
/// `[out, r]`, biases, BatchNorm vectors) is the same in both.
struct WeightLayout {
    /// Per-example input shape of each unit.
    let unitInputShapes: [[Int]]

    init(model: MultiTaskModel) {
        unitInputShapes = [model.spec.inputShape] + model.unitOutputShapes.dropLast()
    }

    /// The names of the linear weights that read their unit's input: a linear unit's layer and a linear adapter
    /// unit's input factor. The unit itself may be shared, a task's copy, or an adapter unit's shared part.
    private static let inputReadingLinearNames: Set<String> = ["fc.weight", "adapter.V"]

    /// The image shape `[H, W, C]` a linear weight under `key` reads, if it reads one.
    private func imageInput(_ key: ParameterKey, _ shape: [Int]) -> [Int]? {
        guard shape.count == 2, Self.inputReadingLinearNames.contains(key.name), let u = key.unit,
              u < unitInputShapes.count else {
            return nil
        }
        let input = unitInputShapes[u]
        return input.count == 3 && input.reduce(1, *) == shape[1] ? input : nil
    }

    /// The shape a model tensor has in the file.
    func fileShape(_ key: ParameterKey, modelShape s: [Int]) -> [Int] {
        s.count == 4 ? [s[0], s[3], s[1], s[2]] : s
    }

    /// The model tensor in the file's layout.
    func toFile(_ key: ParameterKey, _ t: Tensor) -> (shape: [Int], values: [Float]) {
        let s = t.shape
        if s.count == 4 {   // [O, KH, KW, I] → [O, I, KH, KW]
            let (o, kh, kw, i) = (s[0], s[1], s[2], s[3])
            var out = [Float](repeating: 0, count: t.count)
            for a in 0..<o { for b in 0..<kh { for c in 0..<kw { for d in 0..<i {
                out[((a * i + d) * kh + b) * kw + c] = t[((a * kh + b) * kw + c) * i + d]
            } } } }
            return ([o, i, kh, kw], out)
        }
        if let image = imageInput(key, s) {   // columns (h, w, c) → (c, h, w)
            let (h, w, c) = (image[0], image[1], image[2])
            var out = [Float](repeating: 0, count: t.count)
            for r in 0..<s[0] { for y in 0..<h { for x in 0..<w { for ch in 0..<c {
                out[r * s[1] + (ch * h + y) * w + x] = t[r * s[1] + (y * w + x) * c + ch]
            } } } }
            return (s, out)
        }
        return (s, t.values)
    }

    /// Copies file values (already checked to have `fileShape`) into the model tensor.
    func fromFile(_ key: ParameterKey, _ values: [Float], into t: Tensor) {
        let s = t.shape
        if s.count == 4 {
            let (o, kh, kw, i) = (s[0], s[1], s[2], s[3])
            for a in 0..<o { for b in 0..<kh { for c in 0..<kw { for d in 0..<i {
                t[((a * kh + b) * kw + c) * i + d] = values[((a * i + d) * kh + b) * kw + c]
            } } } }
            return
        }
        if let image = imageInput(key, s) {
            let (h, w, c) = (image[0], image[1], image[2])
            for r in 0..<s[0] { for y in 0..<h { for x in 0..<w { for ch in 0..<c {
                t[r * s[1] + (y * w + x) * c + ch] = values[r * s[1] + (ch * h + y) * w + x]
            } } } }
            return
        }
        if t.count > 0 { values.withUnsafeBufferPointer { t.data.update(from: $0.baseAddress!, count: t.count) } }
    }
}
