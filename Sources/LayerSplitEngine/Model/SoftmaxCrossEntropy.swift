#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Softmax cross-entropy over the rows of a logits matrix, fused with its gradient.
///
/// L = (1/B) Σᵢ −log softmax(zᵢ)[yᵢ]; dL/dzᵢ = (softmax(zᵢ) − onehot(yᵢ)) · scale / B. The maximum is
/// subtracted before exponentiating, so large logits do not overflow.
public enum SoftmaxCrossEntropy {
    /// Writes the gradient (times `scale`) into `grad` (same shape as `logits`) unless it is nil, and returns
    /// the mean loss and the number of rows whose arg-max is the label.
    public static func evaluate(
        logits: Tensor, labels: UnsafeBufferPointer<Int32>, scale: Float = 1, grad: Tensor?
    ) -> (loss: Float, correct: Int) {
        let rows = logits.shape[0], classes = logits.rowSize
        guard rows > 0 else { return (0, 0) }
        var total: Double = 0
        var correct = 0
        let inv = scale / Float(rows)
        for i in 0..<rows {
            let z = logits.data + i * classes
            var maxv = z[0], arg = 0
            for c in 1..<classes where z[c] > maxv { maxv = z[c]; arg = c }
            let y = Int(labels[i])
            if arg == y { correct += 1 }
            var sum: Float = 0
            for c in 0..<classes { sum += expf(z[c] - maxv) }
            let logSum = logf(sum)
            total += Double(logSum - (z[y] - maxv))
            if let grad {
                let g = grad.data + i * classes
                for c in 0..<classes { g[c] = expf(z[c] - maxv - logSum) * inv }
                g[y] -= inv
            }
        }
        return (Float(total / Double(rows)), correct)
    }
}
