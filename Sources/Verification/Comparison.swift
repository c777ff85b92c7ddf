import TensorCore

/// Tolerances for comparing a Swift result with a PyTorch reference.
///
/// An element passes when `|actual - reference| ≤ atol + rtol·|reference|` (numpy's `allclose` rule).
/// When `atol` is nil it defaults to `1e-4 · max|reference|` — an absolute slack scaled to the tensor, so that
/// logits in the hundreds and activations near one are judged alike; `rtol` defaults to `1e-4`. float32
/// kernels that sum in a different order than PyTorch's (BLAS blocking, folded batch norm) differ by a few ulps
/// per accumulation, far below these bounds; a wrong layout or a missing op is far above them.
public struct Tolerance: Sendable, Equatable {
    public var atol: Double?
    public var rtol: Double

    public init(atol: Double? = nil, rtol: Double = 1e-4) {
        self.atol = atol
        self.rtol = rtol
    }

    public func absolute(forMaxReference m: Double) -> Double { atol ?? 1e-4 * m }
}

/// How one tensor compares with its reference.
public struct Comparison: Sendable {
    public var name: String
    public var shape: [Int]
    public var maxAbsError: Double
    public var maxAbsReference: Double
    /// max |Δ| / |ref| over elements with ref ≠ 0.
    public var maxRelError: Double
    public var cosine: Double
    /// Flat index and multi-index of the element with the largest |Δ| − allowed slack.
    public var worstIndex: [Int]
    public var worstActual: Double
    public var worstReference: Double
    public var failingElements: Int
    public var atol: Double
    public var rtol: Double
    /// For [N, classes] outputs: fraction of rows whose argmax agrees.
    public var top1Agreement: Double?
    /// For [N, classes] outputs: fraction of rows whose top-5 class sets are equal (order ignored).
    public var top5Agreement: Double?

    public var passed: Bool { failingElements == 0 }

    /// Compares `actual` with `reference` (shapes must be equal).
    public static func compare(name: String, actual: FloatTensor, reference: FloatTensor, tolerance: Tolerance,
                               classification: Bool = false) -> Comparison {
        precondition(actual.shape == reference.shape)
        let a = actual.data, r = reference.data
        var maxAbsRef = 0.0
        for v in r { maxAbsRef = max(maxAbsRef, abs(Double(v))) }
        let atol = tolerance.absolute(forMaxReference: maxAbsRef)
        var maxAbs = 0.0, maxRel = 0.0, dot = 0.0, na = 0.0, nr = 0.0
        var worst = 0, worstExcess = -Double.infinity, failing = 0
        for i in 0..<a.count {
            let x = Double(a[i]), y = Double(r[i])
            let d = abs(x - y)
            let allowed = atol + tolerance.rtol * abs(y)
            if d > maxAbs || d.isNaN { maxAbs = d.isNaN ? .nan : d }
            if y != 0 { maxRel = max(maxRel, d / abs(y)) }
            if !(d <= allowed) { failing += 1 }
            let excess = d.isNaN ? .infinity : d - allowed
            if excess > worstExcess { worstExcess = excess; worst = i }
            dot += x * y; na += x * x; nr += y * y
        }
        let cosine = (na == 0 && nr == 0) ? 1 : (na == 0 || nr == 0 ? 0 : dot / (na.squareRoot() * nr.squareRoot()))
        var c = Comparison(name: name, shape: reference.shape, maxAbsError: maxAbs, maxAbsReference: maxAbsRef,
                           maxRelError: maxRel, cosine: cosine, worstIndex: multiIndex(worst, reference.shape),
                           worstActual: a.isEmpty ? 0 : Double(a[worst]), worstReference: r.isEmpty ? 0 : Double(r[worst]),
                           failingElements: failing, atol: atol, rtol: tolerance.rtol)
        if classification, reference.shape.count == 2, reference.shape[0] > 0, reference.shape[1] > 0 {
            let rows = reference.shape[0], cols = reference.shape[1]
            var top1 = 0, top5 = 0
            for row in 0..<rows {
                let ar = Array(a[(row * cols)..<((row + 1) * cols)]), rr = Array(r[(row * cols)..<((row + 1) * cols)])
                if topK(ar, 1) == topK(rr, 1) { top1 += 1 }
                if Set(topK(ar, 5)) == Set(topK(rr, 5)) { top5 += 1 }
            }
            c.top1Agreement = Double(top1) / Double(rows)
            c.top5Agreement = Double(top5) / Double(rows)
        }
        return c
    }

    package static func multiIndex(_ flat: Int, _ shape: [Int]) -> [Int] {
        var idx = [Int](repeating: 0, count: shape.count)
        var f = flat
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
            idx[d] = f % shape[d]
            f /= shape[d]
        }
        return idx
    }

    /// Indices of the k largest values, largest first (ties: lower index first).
    static func topK(_ v: [Float], _ k: Int) -> [Int] {
        Array(v.indices.sorted { v[$0] != v[$1] ? v[$0] > v[$1] : $0 < $1 }.prefix(k))
    }
}
