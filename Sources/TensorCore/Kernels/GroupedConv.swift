/// Direct (no im2col, no GEMM) convolution for grouped and depthwise convolutions, whose per-group GEMMs are too
/// thin to pay: MobileNetV2 / MobileViT's 3×3 depthwise convolutions (stride 1 and 2, padding 1) have one input
/// channel per group, i.e. a GEMM inner dimension of 9.
///
/// Work is split over (image, group) pairs. Each worker copies the group's input channels into a zero-padded
/// scratch plane (so no tap needs a bounds check) and computes every output channel of the group row by row,
/// 8 output columns at a time: all taps of all the group's input channels are accumulated in registers and the
/// row is stored once, with bias, residual and activation applied while it is in cache.
/// Stride 1 loads 8 consecutive inputs per tap, stride 2 loads 16 and keeps the even lanes, other strides gather.
extension Kernels {
    /// Groups whose per-group inner dimension (input channels per group × kernel area) is at most this use the
    /// direct kernel; wider groups are multiplied as GEMMs per group, where OpenBLAS's throughput wins.
    static let directConvMaxInner = 64

    static func useDirectConv(groups: Int, inner: Int) -> Bool { groups > 1 && inner <= directConvMaxInner }

    /// act(conv(x) + bias + residual) for a grouped convolution, computed directly. Shapes are checked by `conv2d`.
    static func conv2dDirect(_ x: FloatTensor, weight: FloatTensor, bias: FloatTensor?, options o: Conv2dOptions,
                             ho: Int, wo: Int, residual: FloatTensor?, activation: Epilogue) -> FloatTensor {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cinG, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let g = o.groups, coutG = cout / g
        let (sh, sw) = o.stride, (ph, pw) = o.padding, (dh, dw) = o.dilation
        // Padded plane: wide enough for the last (partial) chunk of 8 columns, including the extra lane a stride-2
        // load reads; rows cover every tap of every output row.
        let chunks = (wo + 7) / 8
        let lastColumn = (chunks * 8 - 1) * sw + (kw - 1) * dw + (sw == 2 ? 1 : 0)
        let wp = Swift.max(w + 2 * pw, lastColumn + 1)
        let hp = Swift.max(h + 2 * ph, (ho - 1) * sh + (kh - 1) * dh + 1)
        let planeP = hp * wp
        let taps = cinG * kh * kw
        var out = FloatTensor(shape: [n, cout, ho, wo], uninitialized: { _ in })
        let biasData = bias?.data ?? []
        let residualData = residual?.data ?? []
        x.data.withUnsafeBufferPointer { xb in
        weight.data.withUnsafeBufferPointer { wb in
        biasData.withUnsafeBufferPointer { bb in
        residualData.withUnsafeBufferPointer { rb in
        out.data.withUnsafeMutableBufferPointer { ob in
            let xs = SendableConstPointer(xb.baseAddress!), ws = SendableConstPointer(wb.baseAddress!)
            let bs = bias == nil ? nil : SendableConstPointer(bb.baseAddress!)
            let rs = residual == nil ? nil : SendableConstPointer(rb.baseAddress!)
            let os = SendablePointer(ob.baseAddress!)
            Parallel.forEachChunk(n * g, costPerItem: coutG * ho * wo * taps) { range in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: cinG * planeP)
                defer { scratch.deallocate() }
                for item in range {
                    let img = item / g, grp = item % g
                    // Zero-padded copy of the group's input channels.
                    let src = xs.p + (img * cin + grp * cinG) * h * w
                    scratch.update(repeating: 0, count: cinG * planeP)
                    for c in 0..<cinG {
                        for y in 0..<h {
                            (scratch + c * planeP + (y + ph) * wp + pw).update(from: src + (c * h + y) * w, count: w)
                        }
                    }
                    for oc in grp * coutG..<(grp + 1) * coutG {
                        let plane = img * cout + oc
                        let geometry = DirectConvRow(input: UnsafePointer(scratch), planeStride: planeP, rowStride: wp,
                                                     weight: ws.p + oc * taps, channels: cinG, kh: kh, kw: kw,
                                                     dh: dh, dw: dw, bias: bs?.p[oc] ?? 0)
                        let dst = os.p + plane * ho * wo
                        for oh in 0..<ho {
                            let drow = dst + oh * wo
                            switch sw {
                            case 1: geometry.compute(row: oh * sh, into: drow, width: wo, load: StrideOneLoad.self)
                            case 2: geometry.compute(row: oh * sh, into: drow, width: wo, load: StrideTwoLoad.self)
                            default: geometry.computeStrided(row: oh * sh, stride: sw, into: drow, width: wo)
                            }
                            if let rs { addRow(drow, rs.p + plane * ho * wo + oh * wo, wo) }
                            activation.apply(drow, wo)
                        }
                    }
                }
            }
        }}}}}
        return out
    }
}

/// Loads the 8 inputs of 8 adjacent output columns for one tap, from the first one's input.
protocol DirectConvLoad {
    static func load(_ p: UnsafePointer<Float>) -> FastMath.V
}

enum StrideOneLoad: DirectConvLoad {
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> FastMath.V { UnsafeRawPointer(p).loadUnaligned(as: FastMath.V.self) }
}

enum StrideTwoLoad: DirectConvLoad {
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> FastMath.V {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self).evenHalf
    }
}

/// One output channel's taps over its zero-padded input channels.
struct DirectConvRow {
    let input: UnsafePointer<Float>
    let planeStride: Int, rowStride: Int
    let weight: UnsafePointer<Float>    // [channels, kh, kw]
    let channels: Int, kh: Int, kw: Int, dh: Int, dw: Int
    let bias: Float

    /// out[0..<width] = bias + Σ taps, for the output row whose first padded input row is `row`; columns step by
    /// the loader's stride. The padded plane is wide enough for whole chunks of 8; the last chunk is stored partially.
    @inline(__always)
    func compute<L: DirectConvLoad>(row: Int, into out: UnsafeMutablePointer<Float>, width: Int, load: L.Type) {
        let step = L.self == StrideTwoLoad.self ? 2 : 1
        var ow = 0
        while ow < width {
            var acc = FastMath.V(repeating: bias)
            var wt = weight
            for c in 0..<channels {
                for ki in 0..<kh {
                    let base = input + c * planeStride + (row + ki * dh) * rowStride + ow * step
                    for kj in 0..<kw {
                        acc += FastMath.V(repeating: wt[kj]) * L.load(base + kj * dw)
                    }
                    wt += kw
                }
            }
            if ow + 8 <= width {
                UnsafeMutableRawPointer(out + ow).storeBytes(of: acc, as: FastMath.V.self)
            } else {
                for j in 0..<(width - ow) { out[ow + j] = acc[j] }
            }
            ow += 8
        }
    }

    /// The same for any column stride (gathered loads).
    func computeStrided(row: Int, stride: Int, into out: UnsafeMutablePointer<Float>, width: Int) {
        for ow in 0..<width {
            var acc = bias
            var wt = weight
            for c in 0..<channels {
                for ki in 0..<kh {
                    let base = input + c * planeStride + (row + ki * dh) * rowStride + ow * stride
                    for kj in 0..<kw { acc += wt[kj] * base[kj * dw] }
                    wt += kw
                }
            }
            out[ow] = acc
        }
    }
}
