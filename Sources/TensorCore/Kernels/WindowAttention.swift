// Window kernels of SepViT's DSSA (depthwise self-attention over non-overlapping windows, each with a learned window
// token, then pointwise attention between the windows' tokens), on channels-last token maps [B, H·W, C].
extension Kernels {
    /// Window geometry: an H×W map cut into (H/w)·(W/w) windows of w×w, windows in row-major order (PyTorch's
    /// `'b c (h w1) (w w2) -> (b h w) c (w1 w2)'`), pixels row-major inside each window.
    public struct Windows: Sendable {
        public let batch: Int, height: Int, width: Int, size: Int
        public init(batch: Int, height: Int, width: Int, size: Int) {
            precondition(size > 0 && height % size == 0 && width % size == 0, "Windows: \(height)×\(width) not divisible by \(size)")
            self.batch = batch; self.height = height; self.width = width; self.size = size
        }
        public var perImage: Int { (height / size) * (width / size) }
        public var pixels: Int { size * size }
        /// Flat pixel index (y·W + x) of pixel `p` of window `win`.
        @inline(__always) func pixel(_ win: Int, _ p: Int) -> Int {
            let wy = win / (width / size), wx = win % (width / size)
            return (wy * size + p / size) * width + wx * size + p % size
        }
    }

    /// [B, H·W, C] → [B·nWin, 1 + w², C]: each window's pixels after `token` (C values, the window token).
    public static func windowPartition(_ x: FloatTensor, _ g: Windows, token: FloatTensor) -> FloatTensor {
        let c = token.count
        precondition(x.shape == [g.batch, g.height * g.width, c], "windowPartition: \(x.shape) for \(g) with \(c) channels")
        let n = 1 + g.pixels, nw = g.perImage
        return FloatTensor(shape: [g.batch * nw, n, c]) { ob in
            guard ob.count > 0 else { return }
            let o = SendablePointer(ob.baseAddress!)
            x.data.withUnsafeBufferPointer { xb in token.data.withUnsafeBufferPointer { tb in
                let xp = SendableConstPointer(xb.baseAddress!), tp = SendableConstPointer(tb.baseAddress!)
                Parallel.forEachChunk(g.batch * nw, costPerItem: n * c) { range in
                    for bw in range {
                        let b = bw / nw, win = bw % nw
                        let dst = o.p + bw * n * c
                        dst.update(from: tp.p, count: c)
                        for p in 0..<g.pixels {
                            (dst + (1 + p) * c).update(from: xp.p + (b * g.height * g.width + g.pixel(win, p)) * c, count: c)
                        }
                    }
                }
            }}
        }
    }

    /// The inverse for the pixels: [B·nWin, 1 + w², C] (token 0 dropped) → [B, H·W, C].
    public static func windowMerge(_ y: FloatTensor, _ g: Windows) -> FloatTensor {
        let nw = g.perImage, n = 1 + g.pixels
        precondition(y.rank == 3 && y.shape[0] == g.batch * nw && y.shape[1] == n, "windowMerge: \(y.shape) for \(g)")
        let c = y.shape[2]
        return FloatTensor(shape: [g.batch, g.height * g.width, c]) { ob in
            guard ob.count > 0 else { return }
            let o = SendablePointer(ob.baseAddress!)
            y.data.withUnsafeBufferPointer { yb in
                let yp = SendableConstPointer(yb.baseAddress!)
                Parallel.forEachChunk(g.batch * nw, costPerItem: n * c) { range in
                    for bw in range {
                        let b = bw / nw, win = bw % nw
                        for p in 0..<g.pixels {
                            (o.p + (b * g.height * g.width + g.pixel(win, p)) * c).update(from: yp.p + (bw * n + 1 + p) * c, count: c)
                        }
                    }
                }
            }
        }
    }

    /// DSSA's pointwise step: out[b, pixel of window i, h·d ..< (h+1)·d] = Σ_j attn[b, h, i, j] · y[b·nWin + j, 1 + p, h·d …]
    /// for the windowed feature maps y [B·nWin, 1 + w², heads·d] and window attention attn [B, heads, nWin, nWin];
    /// result [B, H·W, heads·d] (folded back to the map).
    public static func windowAggregate(_ y: FloatTensor, attention attn: FloatTensor, heads: Int, _ g: Windows) -> FloatTensor {
        let nw = g.perImage, n = 1 + g.pixels
        precondition(y.rank == 3 && y.shape[0] == g.batch * nw && y.shape[1] == n && y.shape[2] % heads == 0
                        && attn.shape == [g.batch, heads, nw, nw], "windowAggregate: y \(y.shape), attention \(attn.shape), \(heads) heads, \(g)")
        let c = y.shape[2], d = c / heads
        return FloatTensor(shape: [g.batch, g.height * g.width, c]) { ob in
            guard ob.count > 0 else { return }
            ob.update(repeating: 0)
            let o = SendablePointer(ob.baseAddress!)
            y.data.withUnsafeBufferPointer { yb in attn.data.withUnsafeBufferPointer { ab in
                let yp = SendableConstPointer(yb.baseAddress!), ap = SendableConstPointer(ab.baseAddress!)
                // One (image, window i) per item: its output pixels are disjoint from every other item's.
                Parallel.forEachChunk(g.batch * nw, costPerItem: nw * g.pixels * c) { range in
                    for bi in range {
                        let b = bi / nw, i = bi % nw
                        for h in 0..<heads {
                            let arow = ap.p + ((b * heads + h) * nw + i) * nw
                            for p in 0..<g.pixels {
                                let dst = o.p + (b * g.height * g.width + g.pixel(i, p)) * c + h * d
                                for j in 0..<nw {
                                    let a = arow[j]
                                    let src = yp.p + ((b * nw + j) * n + 1 + p) * c + h * d
                                    for e in 0..<d { dst[e] += a * src[e] }
                                }
                            }
                        }
                    }
                }
            }}
        }
    }

    /// DSSA's attention between window tokens: qk [B·nWin, heads·2d] holds per head (w_q, w_k) of d each (vit-pytorch's
    /// `'b (h c) n -> b h n c'` then `chunk(2, dim=-1)`); returns softmax(scale · w_q · w_kᵀ) as [B, heads, nWin, nWin].
    public static func windowTokenAttention(_ qk: FloatTensor, batch: Int, windows nw: Int, heads: Int, dimHead d: Int,
                                            scale: Float) -> FloatTensor {
        let inner = heads * d
        precondition(qk.shape == [batch * nw, 2 * inner], "windowTokenAttention: qk \(qk.shape) for \(batch)·\(nw) windows, \(heads)×\(d)")
        return FloatTensor(shape: [batch, heads, nw, nw]) { ab in
            guard ab.count > 0 else { return }
            qk.data.withUnsafeBufferPointer { q in
                let qp = q.baseAddress!
                var scaled = [Float](repeating: 0, count: d)
                for b in 0..<batch {
                    for h in 0..<heads {
                        for i in 0..<nw {
                            let qi = qp + (b * nw + i) * 2 * inner + h * 2 * d
                            for e in 0..<d { scaled[e] = qi[e] * scale }
                            let row = ab.baseAddress! + ((b * heads + h) * nw + i) * nw
                            for j in 0..<nw {
                                let kj = qp + (b * nw + j) * 2 * inner + h * 2 * d + d
                                var s: Float = 0
                                for e in 0..<d { s += scaled[e] * kj[e] }
                                row[j] = s
                            }
                            softmaxRow(row, nw)
                        }
                    }
                }
            }
        }
    }

    /// Mean over the token axis: [B, T, C] → [B, C] (`Reduce('b d h w -> b d', 'mean')` on a token map).
    public static func meanTokens(_ x: FloatTensor) -> FloatTensor {
        precondition(x.rank == 3 && x.shape[1] > 0, "meanTokens: \(x.shape)")
        let (b, t, c) = (x.shape[0], x.shape[1], x.shape[2])
        return FloatTensor(shape: [b, c]) { ob in
            x.data.withUnsafeBufferPointer { xb in
                for bi in 0..<b {
                    for ci in 0..<c {
                        var s: Double = 0
                        for ti in 0..<t { s += Double(xb[(bi * t + ti) * c + ci]) }
                        ob[bi * c + ci] = Float(s / Double(t))
                    }
                }
            }
        }
    }
}
