import Dispatch
// Winograd F(4×4, 3×3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016),
// interpolation points 0, ±1, ±2, ∞: each 4×4 output tile costs 36 multiplies per (input, output) channel pair
// instead of 144. For 3×3, stride-1, undilated, ungrouped convolutions (most of a ResNet's work).
//
// Pipeline for a batch (T = all 4×4 output tiles of all images, p = one of the 6×6 transform positions):
//   1. pad      x → zero-padded copy whose tiles can be read without bounds checks
//   2. input    V[c][p][t] = (Bᵀ d_{c,t} B)[p]          (d = the 6×6 input patch of tile t)
//   3. multiply M[·][p][·] = U[p] · V[·][p][·]  ([Cout×Cin]·[Cin×T], one sgemm per position; U = G g Gᵀ, prepared once)
//   4. output   y_{k,t} = Aᵀ M[k][·][t] A  + bias, residual, activation → NCHW output
// Transforms run eight tiles at a time in SIMD8 lanes; stages 1, 2 and 4 are parallel over channels.

/// Eight tiles, one per lane.
private typealias Lanes = FastMath.V

/// Winograd F(4×4, 3×3) weights U[p][k][c] = (G g_{k,c} Gᵀ)[p] for a [Cout, Cin, 3, 3] kernel.
struct WinogradWeights: Sendable {
    static let alpha = 6, tile = 4, positions = 36
    let cout: Int, cin: Int
    let u: [Float]

    init(_ weight: FloatTensor) {
        precondition(weight.rank == 4 && weight.shape[2] == 3 && weight.shape[3] == 3, "Winograd: 3×3 kernels only, got \(weight.shape)")
        let (k, c) = (weight.shape[0], weight.shape[1])
        cout = k; cin = c
        let count = Self.positions * k * c
        var u = [Float](unsafeUninitializedCapacity: count) { _, n in n = count }
        weight.data.withUnsafeBufferPointer { wb in
        u.withUnsafeMutableBufferPointer { ub in
            let src = SendableConstPointer(wb.baseAddress!), dst = SendablePointer(ub.baseAddress!)
            let plane = k * c
            Parallel.forEachChunk(plane, costPerItem: 400) { range in
                var tmp = [Double](repeating: 0, count: 18)          // G·g, 6×3
                for kc in range {
                    let g = src.p + kc * 9
                    for col in 0..<3 {
                        let r = g6(Double(g[col]), Double(g[3 + col]), Double(g[6 + col]))
                        tmp[col] = r.0; tmp[3 + col] = r.1; tmp[6 + col] = r.2
                        tmp[9 + col] = r.3; tmp[12 + col] = r.4; tmp[15 + col] = r.5
                    }
                    for i in 0..<6 {
                        let r = g6(tmp[3 * i], tmp[3 * i + 1], tmp[3 * i + 2])
                        let o = dst.p + (6 * i) * plane + kc
                        o[0] = Float(r.0); o[plane] = Float(r.1); o[2 * plane] = Float(r.2)
                        o[3 * plane] = Float(r.3); o[4 * plane] = Float(r.4); o[5 * plane] = Float(r.5)
                    }
                }
            }
        }}
        self.u = u
    }
}

/// G·g for one column (or row) of a 3×3 kernel. G (6×3) has rows 1/4·[1 0 0], -1/6·[1 1 1], -1/6·[1 -1 1],
/// [1/24 1/12 1/6], [1/24 -1/12 1/6], [0 0 1].
@inline(__always)
private func g6(_ a: Double, _ b: Double, _ c: Double) -> (Double, Double, Double, Double, Double, Double) {
    (a / 4, -(a + b + c) / 6, -(a - b + c) / 6, a / 24 + b / 12 + c / 6, a / 24 - b / 12 + c / 6, c)
}

/// Bᵀ·d for one column (or row) of a 6×6 input patch.
@inline(__always)
private func inputTransform(_ d0: Lanes, _ d1: Lanes, _ d2: Lanes, _ d3: Lanes, _ d4: Lanes, _ d5: Lanes)
    -> (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes) {
    let t12 = d4 - 4 * d2, t34 = d3 - 4 * d1     // o1 = t12 + t34, o2 = t12 - t34
    let u12 = d4 - d2, u34 = 2 * (d3 - d1)         // o3 = u12 + u34, o4 = u12 - u34
    return (4 * d0 - 5 * d2 + d4, t12 + t34, t12 - t34, u12 + u34, u12 - u34, 4 * d1 - 5 * d3 + d5)
}

/// Aᵀ·m for one column (or row) of a 6×6 product tile.
@inline(__always)
private func outputTransform(_ m0: Lanes, _ m1: Lanes, _ m2: Lanes, _ m3: Lanes, _ m4: Lanes, _ m5: Lanes)
    -> (Lanes, Lanes, Lanes, Lanes) {
    let a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4
    return (m0 + a + c, b + 2 * d, a + 4 * c, b + 8 * d + m5)
}

extension Kernels {
    /// 3×3, stride-1 convolution through Winograd F(4×4, 3×3) with prepared weights; same contract as `conv2d`.
    ///
    /// Many tiles (batches, large maps): the tiles are cut into chunks and each worker runs all four stages on its
    /// chunks with single-threaded GEMMs, so V and M stay in cache. Few tiles: pad + input transform split by input
    /// channel, then GEMMs + output transform split by output channel.
    static func conv2dWinograd(_ x: FloatTensor, weights wt: WinogradWeights, bias: FloatTensor?, padding: (h: Int, w: Int),
                               residual: FloatTensor?, activation: Epilogue, chunkBytes: Int = 8 << 20) -> FloatTensor {
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let cout = wt.cout
        precondition(cin == wt.cin, "conv2d: input \(x.shape) for Winograd weights with \(wt.cin) input channels")
        let ho = h + 2 * padding.h - 2, wo = w + 2 * padding.w - 2
        let m = WinogradWeights.tile, positions = WinogradWeights.positions
        let th = (ho + m - 1) / m, tw = (wo + m - 1) / m
        let tilesPerImage = th * tw
        let tiles = n * tilesPerImage
        let groups = (tiles + 7) / 8 * 8                // tiles rounded up to whole SIMD8 groups
        // Zero-padded input planes, big enough for every tile's 6×6 patch.
        let hp = th * m + 2, wp = tw * m + 2
        let planeP = hp * wp

        // Chunking: V and M of one chunk (36·(Cin + Cout)·chunk floats) should stay within `chunkBytes`; the chunk
        // count is a multiple of the worker count so the workers finish together.
        let workers = Parallel.workers
        let maxChunk = Swift.max(8, chunkBytes / (4 * positions * (cin + cout)) / 8 * 8)
        var chunkCount = (tiles + maxChunk - 1) / maxChunk
        chunkCount = (chunkCount + workers - 1) / workers * workers
        let chunked = workers > 1 && chunkCount >= 2 * workers
        let chunk = chunked ? ((tiles + chunkCount - 1) / chunkCount + 7) / 8 * 8 : groups
        let scratchSets = chunked ? workers : 1

        var padded = [Float](unsafeUninitializedCapacity: n * cin * planeP) { _, c in c = n * cin * planeP }
        let scratchCount = scratchSets * positions * (cin + cout) * chunk
        var scratch = [Float](unsafeUninitializedCapacity: scratchCount) { _, c in c = scratchCount }
        // Tile t → offset of its patch in a padded plane (image part included); past the end, the last tile's.
        var patchOffset = [Int](unsafeUninitializedCapacity: groups + chunk) { _, c in c = groups + chunk }
        for t in 0..<(groups + chunk) {
            let tt = Swift.min(t, tiles - 1)
            let b = tt / tilesPerImage, r = tt % tilesPerImage
            patchOffset[t] = b * cin * planeP + (r / tw) * m * wp + (r % tw) * m
        }
        // Tile t → offset of its 4×4 block in an output plane (image part included), and rows·8 + columns inside.
        var dest = [Int](repeating: 0, count: tiles), extent = [Int](repeating: 0, count: tiles)
        for t in 0..<tiles {
            let b = t / tilesPerImage, r = t % tilesPerImage
            let oy = (r / tw) * m, ox = (r % tw) * m
            dest[t] = b * cout * ho * wo + oy * wo + ox
            extent[t] = Swift.min(m, ho - oy) << 3 | Swift.min(m, wo - ox)
        }

        var out = FloatTensor(shape: [n, cout, ho, wo], uninitialized: { _ in })
        let biasData = bias?.data ?? [], resData = residual?.data ?? []
        x.data.withUnsafeBufferPointer { xb in
        padded.withUnsafeMutableBufferPointer { pb in
        scratch.withUnsafeMutableBufferPointer { sb in
        patchOffset.withUnsafeBufferPointer { ob in
        dest.withUnsafeBufferPointer { db in
        extent.withUnsafeBufferPointer { eb in
        wt.u.withUnsafeBufferPointer { ub in
        biasData.withUnsafeBufferPointer { bb in
        resData.withUnsafeBufferPointer { rb in
        out.data.withUnsafeMutableBufferPointer { yb in
            // 1. Pad (plane = image · Cin + channel).
            let xs = SendableConstPointer(xb.baseAddress!), ps = SendablePointer(pb.baseAddress!)
            let pad: @Sendable (Int) -> Void = { plane in
                let dst = ps.p + plane * planeP, src = xs.p + plane * h * w
                dst.update(repeating: 0, count: planeP)
                for y in 0..<Swift.min(h, hp - padding.h) {
                    (dst + (y + padding.h) * wp + padding.w).update(from: src + y * w, count: Swift.min(w, wp - padding.w))
                }
            }
            let pass = WinogradPass(padded: pb.baseAddress!, planeStride: planeP, rowStride: wp, cin: cin, cout: cout,
                                    u: ub.baseAddress!, patchOffset: ob.baseAddress!, dest: db.baseAddress!,
                                    extent: eb.baseAddress!, bias: bias == nil ? nil : bb.baseAddress!,
                                    residual: residual == nil ? nil : rb.baseAddress!, out: yb.baseAddress!,
                                    outPlane: ho * wo, outRow: wo, activation: activation)
            let scratchBase = SendablePointer(sb.baseAddress!)
            if chunked {
                Parallel.forEachChunk(n * cin, costPerItem: planeP) { range in range.forEach(pad) }
                Gemm.withSingleThreadedBLAS {
                    DispatchQueue.concurrentPerform(iterations: workers) { worker in
                        let v = scratchBase.p + worker * positions * (cin + cout) * chunk
                        let mm = v + positions * cin * chunk
                        var start = worker * chunk
                        while start < tiles {
                            let range = start..<Swift.min(tiles, start + chunk)
                            pass.transformInput(channels: 0..<cin, tiles: range, into: v, ld: chunk)
                            pass.multiply(outChannels: 0..<cout, tiles: range.count, v: v, m: mm, ld: chunk)
                            pass.transformOutput(channels: 0..<cout, tiles: range, from: mm, ld: chunk)
                            start += workers * chunk
                        }
                    }
                }
            } else {
                // Two phases: pad + input transform by input channel; GEMMs + output transform by output channel
                // (each worker multiplies its rows of every U[p] with all of V, then transforms what it made).
                let v = scratchBase, mm = SendablePointer(scratchBase.p + positions * cin * chunk)
                Parallel.forEachChunk(cin, costPerItem: groups * 60 + n * planeP) { range in
                    for b in 0..<n { for c in range { pad(b * cin + c) } }
                    pass.transformInput(channels: range, tiles: 0..<tiles, into: v.p, ld: chunk)
                }
                Gemm.withSingleThreadedBLAS {
                    Parallel.forEachChunk(cout, costPerItem: 2 * positions * cin * tiles) { range in
                        pass.multiply(outChannels: range, tiles: tiles, v: v.p, m: mm.p, ld: chunk)
                        pass.transformOutput(channels: range, tiles: 0..<tiles, from: mm.p, ld: chunk)
                    }
                }
            }
        }}}}}}}}}}
        return out
    }
}

/// The buffers and geometry of one Winograd convolution, shared by its workers (each writes disjoint parts).
private struct WinogradPass: @unchecked Sendable {
    let padded: UnsafeMutablePointer<Float>
    let planeStride: Int, rowStride: Int, cin: Int, cout: Int
    let u: UnsafePointer<Float>
    let patchOffset: UnsafePointer<Int>, dest: UnsafePointer<Int>, extent: UnsafePointer<Int>
    let bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?
    let out: UnsafeMutablePointer<Float>
    let outPlane: Int, outRow: Int
    let activation: Epilogue

    /// V[c][6·i + j][t − tiles.lowerBound] = (Bᵀ d B)[i][j] for the given channels and tiles (row stride `ld`).
    /// Channel-major, so one channel's 36 rows are written together; the GEMMs read position p with stride 36·ld.
    func transformInput(channels: Range<Int>, tiles: Range<Int>, into v: UnsafeMutablePointer<Float>, ld: Int) {
        let wp = rowStride, vStride = ld
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 36) { rowsBuffer in
            let rows = rowsBuffer.baseAddress!
            for c in channels {
                let base = UnsafePointer(padded) + c * planeStride
                for g in stride(from: tiles.lowerBound, to: tiles.upperBound, by: 8) {
                    let o = patchOffset + g
                    let p0 = base + o[0], p1 = base + o[1], p2 = base + o[2], p3 = base + o[3]
                    let p4 = base + o[4], p5 = base + o[5], p6 = base + o[6], p7 = base + o[7]
                    // Along each patch row r: rows[6·r + j] = (d_r · B)[j].
                    for r in 0..<6 {
                        let s = r * wp
                        @inline(__always) func col(_ j: Int) -> Lanes {
                            Lanes(p0[s + j], p1[s + j], p2[s + j], p3[s + j], p4[s + j], p5[s + j], p6[s + j], p7[s + j])
                        }
                        let t = inputTransform(col(0), col(1), col(2), col(3), col(4), col(5))
                        rows[6 * r] = t.0; rows[6 * r + 1] = t.1; rows[6 * r + 2] = t.2
                        rows[6 * r + 3] = t.3; rows[6 * r + 4] = t.4; rows[6 * r + 5] = t.5
                    }
                    // Down each column j, stored to V[c][6·i + j][g…g+7].
                    let dst = v + c * 36 * ld + (g - tiles.lowerBound)
                    for j in 0..<6 {
                        let t = inputTransform(rows[j], rows[6 + j], rows[12 + j], rows[18 + j], rows[24 + j], rows[30 + j])
                        storeLanes(t.0, dst + j * vStride)
                        storeLanes(t.1, dst + (6 + j) * vStride)
                        storeLanes(t.2, dst + (12 + j) * vStride)
                        storeLanes(t.3, dst + (18 + j) * vStride)
                        storeLanes(t.4, dst + (24 + j) * vStride)
                        storeLanes(t.5, dst + (30 + j) * vStride)
                    }
                }
            }
        }
    }

    /// M[k][p][·] = U[p][k][·] · V[·][p][·] for the given output channels k and every position p
    /// ([Cout×Cin]·[Cin×tiles] per position); M is [Cout][36][ld].
    func multiply(outChannels: Range<Int>, tiles: Int, v: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>, ld: Int) {
        let k0 = outChannels.lowerBound
        for p in 0..<WinogradWeights.positions {
            Gemm.sgemm(m: outChannels.count, n: tiles, k: cin, a: u + (p * cout + k0) * cin, lda: cin,
                       b: v + p * ld, ldb: 36 * ld, c: m + k0 * 36 * ld + p * ld, ldc: 36 * ld)
        }
    }

    /// out = act(Aᵀ M A + bias + residual) for the given output channels and tiles, clipped at the map's edges.
    func transformOutput(channels: Range<Int>, tiles: Range<Int>, from m: UnsafePointer<Float>, ld: Int) {
        let mStride = ld, wo = outRow
        withUnsafeTemporaryAllocation(of: Lanes.self, capacity: 24 + 16) { scratch in
            let cols = scratch.baseAddress!, y = scratch.baseAddress! + 24
            let yf = UnsafeRawPointer(y).assumingMemoryBound(to: Float.self)
            for k in channels {
                let beta = bias?[k] ?? 0
                for g in stride(from: tiles.lowerBound, to: tiles.upperBound, by: 8) {
                    let src = m + k * 36 * ld + (g - tiles.lowerBound)
                    // Along each row r of the 6×6 product tile: cols[4·r + j] = (M_r · A)[j].
                    for r in 0..<6 {
                        let s = src + 6 * r * mStride
                        let t = outputTransform(loadLanes(s), loadLanes(s + mStride), loadLanes(s + 2 * mStride),
                                                loadLanes(s + 3 * mStride), loadLanes(s + 4 * mStride), loadLanes(s + 5 * mStride))
                        cols[4 * r] = t.0; cols[4 * r + 1] = t.1; cols[4 * r + 2] = t.2; cols[4 * r + 3] = t.3
                    }
                    for j in 0..<4 {
                        let t = outputTransform(cols[j], cols[4 + j], cols[8 + j], cols[12 + j], cols[16 + j], cols[20 + j])
                        y[j] = t.0; y[4 + j] = t.1; y[8 + j] = t.2; y[12 + j] = t.3
                    }
                    // SiLU without a residual is applied here, 8 tiles at a time; otherwise in the scatter below.
                    let siluHere = activation == .silu && residual == nil
                    if siluHere { for q in 0..<16 { y[q] = FastMath.silu(y[q] + beta) } }
                    let rowBias = siluHere ? 0 : beta
                    let scatterActivation: Epilogue = siluHere ? .none : activation
                    // Scatter the 4×4 tiles with the epilogue: whole rows of four where the tile is inside the map.
                    for lane in 0..<Swift.min(8, tiles.upperBound - g) {
                        let at = dest[g + lane] + k * outPlane
                        let e = extent[g + lane]
                        let rowsValid = e >> 3, colsValid = e & 7
                        for i in 0..<rowsValid {
                            let d = out + at + i * wo
                            let q = yf + 32 * i + lane
                            if colsValid == 4 {
                                var row = SIMD4<Float>(q[0], q[8], q[16], q[24]) + rowBias
                                if let residual { row += UnsafeRawPointer(residual + at + i * wo).loadUnaligned(as: SIMD4<Float>.self) }
                                switch scatterActivation {
                                case .none: break
                                case .relu: row = row.replacing(with: 0, where: row .< 0)
                                case .silu: for j in 0..<4 { row[j] = Epilogue.silu(row[j]) }
                                }
                                UnsafeMutableRawPointer(d).storeBytes(of: row, as: SIMD4<Float>.self)
                            } else {
                                for j in 0..<colsValid {
                                    var value = q[8 * j] + rowBias
                                    if let residual { value += residual[at + i * wo + j] }
                                    d[j] = scatterActivation(value)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

@inline(__always)
private func storeLanes(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
}

@inline(__always)
private func loadLanes(_ p: UnsafePointer<Float>) -> Lanes {
    UnsafeRawPointer(p).loadUnaligned(as: Lanes.self)
}

