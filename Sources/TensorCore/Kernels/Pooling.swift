extension Kernels {
    /// `nn.MaxPool2d(kernel, stride, padding)` (dilation 1, floor mode): padded positions never win.
    public static func maxPool2d(_ x: FloatTensor, kernel: Int, stride: Int? = nil, padding: Int = 0) -> FloatTensor {
        precondition(x.rank == 4, "maxPool2d: expects [N, C, H, W], got \(x.shape)")
        let s = stride ?? kernel
        precondition(kernel > 0 && s > 0 && padding >= 0 && 2 * padding <= kernel,
                     "maxPool2d: invalid kernel \(kernel) / stride \(s) / padding \(padding)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let ho = (h + 2 * padding - kernel) / s + 1, wo = (w + 2 * padding - kernel) / s + 1
        precondition(ho > 0 && wo > 0, "maxPool2d: output would be empty for \(x.shape)")
        // Separable: the window's rows are reduced into one row (contiguous, vectorised), then its columns, eight
        // outputs at a time from a copy of that row with -∞ where the padding is (so no window is clipped).
        let rowCount = w + 2 * padding + kernel + 8 * s
        return FloatTensor(shape: [n, c, ho, wo]) { ob in
            let o = SendablePointer(ob.baseAddress!)
            x.data.withUnsafeBufferPointer { xb in
                let xp = SendableConstPointer(xb.baseAddress!)
                Parallel.forEachChunk(n * c, costPerItem: ho * (w + wo) * kernel) { range in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: rowCount) { rowBuffer in
                        let padded = rowBuffer.baseAddress!
                        padded.initialize(repeating: -.infinity, count: rowCount)
                        let rowMax = padded + padding
                        for plane in range {
                            let src = xp.p + plane * h * w, dst = o.p + plane * ho * wo
                            for oh in 0..<ho {
                                let h0 = Swift.max(oh * s - padding, 0), h1 = Swift.min(oh * s - padding + kernel, h)
                                rowMax.update(from: src + h0 * w, count: w)
                                for ih in (h0 + 1)..<Swift.max(h0 + 1, h1) {
                                    let row = src + ih * w
                                    var iw = 0
                                    while iw + 8 <= w {
                                        let a = UnsafeRawPointer(rowMax + iw).loadUnaligned(as: SIMD8<Float>.self)
                                        let b = UnsafeRawPointer(row + iw).loadUnaligned(as: SIMD8<Float>.self)
                                        UnsafeMutableRawPointer(rowMax + iw).storeBytes(of: nanMax(a, b), as: SIMD8<Float>.self)
                                        iw += 8
                                    }
                                    while iw < w { rowMax[iw] = nanMax(rowMax[iw], row[iw]); iw += 1 }
                                }
                                let out = dst + oh * wo
                                var ow = 0
                                while ow < wo {
                                    // Window of output ow starts at padded[ow·s].
                                    let p = UnsafePointer(padded) + ow * s
                                    @inline(__always) func lanes(_ k: Int) -> SIMD8<Float> {
                                        SIMD8(p[k], p[k + s], p[k + 2 * s], p[k + 3 * s], p[k + 4 * s], p[k + 5 * s], p[k + 6 * s], p[k + 7 * s])
                                    }
                                    var m = lanes(0)
                                    for k in 1..<Swift.max(1, kernel) { m = nanMax(m, lanes(k)) }
                                    for l in 0..<Swift.min(8, wo - ow) { out[ow + l] = m[l] }
                                    ow += 8
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Lane-wise max(a, b) that propagates NaN from either side, as PyTorch's max pooling does.
    @inline(__always)
    static func nanMax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        b.replacing(with: a, where: (a .> b) .| (a .!= a))
    }

    /// max(a, b) that propagates NaN from either side, as PyTorch's max pooling does.
    @inline(__always)
    static func nanMax(_ a: Float, _ b: Float) -> Float { a > b || a.isNaN ? a : b }

    /// PyTorch's adaptive pooling window along one axis: [floor(i·in/out), ceil((i+1)·in/out)).
    @inlinable
    public static func adaptiveWindow(_ i: Int, input: Int, output: Int) -> Range<Int> {
        let start = (i * input) / output
        let end = ((i + 1) * input + output - 1) / output
        return start..<end
    }

    /// `nn.AdaptiveAvgPool2d((outH, outW))`.
    public static func adaptiveAvgPool2d(_ x: FloatTensor, outputSize: (Int, Int)) -> FloatTensor {
        adaptivePool(x, outputSize: outputSize, average: true)
    }

    /// `nn.AdaptiveMaxPool2d((outH, outW))`.
    public static func adaptiveMaxPool2d(_ x: FloatTensor, outputSize: (Int, Int)) -> FloatTensor {
        adaptivePool(x, outputSize: outputSize, average: false)
    }

    static func adaptivePool(_ x: FloatTensor, outputSize: (Int, Int), average: Bool) -> FloatTensor {
        precondition(x.rank == 4, "adaptive pool: expects [N, C, H, W], got \(x.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (ho, wo) = outputSize
        precondition(ho > 0 && wo > 0 && h > 0 && w > 0, "adaptive pool: invalid sizes \(x.shape) → \(outputSize)")
        return FloatTensor(shape: [n, c, ho, wo]) { ob in
            let o = SendablePointer(ob.baseAddress!)
            x.data.withUnsafeBufferPointer { xb in
                let xp = SendableConstPointer(xb.baseAddress!)
                Parallel.forEachChunk(n * c, costPerItem: h * w) { range in
                    for plane in range {
                        let src = xp.p + plane * h * w, dst = o.p + plane * ho * wo
                        for oh in 0..<ho {
                            let rows = adaptiveWindow(oh, input: h, output: ho)
                            for ow in 0..<wo {
                                let cols = adaptiveWindow(ow, input: w, output: wo)
                                var acc: Float = average ? 0 : -.infinity
                                for ih in rows {
                                    let row = src + ih * w
                                    if average {
                                        for iw in cols { acc += row[iw] }
                                    } else {
                                        for iw in cols { let v = row[iw]; if v > acc || v.isNaN { acc = v } }
                                    }
                                }
                                dst[oh * wo + ow] = average ? acc / Float(rows.count * cols.count) : acc
                            }
                        }
                    }
                }
            }
        }
    }
}
