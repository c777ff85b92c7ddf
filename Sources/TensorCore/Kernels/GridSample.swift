import Foundation

/// Spatial-transformer sampling at PyTorch's defaults: `F.affine_grid(theta, size)` and `F.grid_sample(x, grid)` with
/// mode bilinear, padding_mode zeros and align_corners=False.
extension Kernels {
    /// `F.affine_grid(theta, (N, C, H, W), align_corners=False)`: theta [N, 2, 3] → grid [N, H, W, 2] whose last
    /// dimension is (x, y) in [−1, 1] coordinates. Pixel centres: x_j = (2j + 1)/W − 1, y_i = (2i + 1)/H − 1
    /// (PyTorch's `linspace(−1, 1, W) · (W − 1)/W`), grid = theta · (x, y, 1)ᵀ. Evaluated in Double, rounded once.
    public static func affineGrid(theta: FloatTensor, height: Int, width: Int) -> FloatTensor {
        precondition(theta.rank == 3 && theta.shape[1] == 2 && theta.shape[2] == 3,
                     "affineGrid: theta must be [N, 2, 3], got \(theta.shape)")
        precondition(height > 0 && width > 0, "affineGrid: empty size \(height)×\(width)")
        let n = theta.shape[0]
        let xs = (0..<width).map { Double(2 * $0 + 1) / Double(width) - 1 }
        let ys = (0..<height).map { Double(2 * $0 + 1) / Double(height) - 1 }
        return FloatTensor(shape: [n, height, width, 2]) { ob in
            guard n > 0 else { return }
            var o = 0
            for b in 0..<n {
                let t = (0..<6).map { Double(theta.data[b * 6 + $0]) }
                for i in 0..<height {
                    for j in 0..<width {
                        ob[o] = Float(t[0] * xs[j] + t[1] * ys[i] + t[2])
                        ob[o + 1] = Float(t[3] * xs[j] + t[4] * ys[i] + t[5])
                        o += 2
                    }
                }
            }
        }
    }

    /// `F.grid_sample(x, grid)` (bilinear, zeros, align_corners=False): x [N, C, H, W], grid [N, Ho, Wo, 2] →
    /// [N, C, Ho, Wo]. A grid point (gx, gy) samples input pixel coordinates ix = ((gx + 1)·W − 1)/2,
    /// iy = ((gy + 1)·H − 1)/2; corners outside the input count as 0. A NaN coordinate gives NaN; infinite ones
    /// fall outside (0). Parallel over (image, output row).
    public static func gridSample(_ x: FloatTensor, grid: FloatTensor) -> FloatTensor {
        precondition(x.rank == 4 && grid.rank == 4 && grid.shape[3] == 2 && grid.shape[0] == x.shape[0],
                     "gridSample: expects x [N, C, H, W] and grid [N, Ho, Wo, 2], got \(x.shape), \(grid.shape)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (ho, wo) = (grid.shape[1], grid.shape[2])
        return FloatTensor(shape: [n, c, ho, wo]) { ob in
            guard n * c * ho * wo > 0 else { return }
            let out = SendablePointer(ob.baseAddress!)
            x.data.withUnsafeBufferPointer { xb in grid.data.withUnsafeBufferPointer { gb in
                let xp = SendableConstPointer(xb.baseAddress!), gp = SendableConstPointer(gb.baseAddress!)
                Parallel.forEachChunk(n * ho, costPerItem: wo * c * 8) { range in
                    for r in range {
                        let b = r / ho, i = r % ho
                        let g = gp.p + (b * ho + i) * wo * 2
                        for j in 0..<wo {
                            let s = BilinearSample(gx: g[2 * j], gy: g[2 * j + 1], height: h, width: w)
                            var src = xp.p + b * c * h * w
                            var dst = out.p + (b * c * ho + i) * wo + j
                            for _ in 0..<c {
                                dst.pointee = s.value(in: src)
                                src += h * w
                                dst += ho * wo
                            }
                        }
                    }
                }
            }}
        }
    }
}

/// The four corner offsets and weights of one bilinear sample (PyTorch's formulas: each weight is the product of the
/// distances to the opposite corner). Corners outside the input are left out of the sum (`inside` bits), so no
/// read leaves the plane and an out-of-bounds corner contributes exactly 0 as PyTorch's zero padding does.
struct BilinearSample {
    var offsets: (Int, Int, Int, Int) = (0, 0, 0, 0)
    var weights: (Float, Float, Float, Float) = (0, 0, 0, 0)
    var inside: UInt8 = 0      // bit k: corner k (nw, ne, sw, se) is in the input
    var isNaN = false

    init(gx: Float, gy: Float, height h: Int, width w: Int) {
        let ix = ((gx + 1) * Float(w) - 1) / 2
        let iy = ((gy + 1) * Float(h) - 1) / 2
        if ix.isNaN || iy.isNaN { isNaN = true; return }
        // Far outside (or infinite): every corner is out of bounds; also keeps the Int conversion in range.
        if !(ix > -2 && ix < Float(w) + 1 && iy > -2 && iy < Float(h) + 1) { return }
        let x0f = ix.rounded(.down), y0f = iy.rounded(.down)
        let x0 = Int(x0f), y0 = Int(y0f)
        let (x1, y1) = (x0 + 1, y0 + 1)
        let (e, s) = (Float(x1) - ix, Float(y1) - iy)   // distances to the east / south corners
        let (wx, ny) = (ix - x0f, iy - y0f)             // distances to the west / north corners
        let xIn0 = x0 >= 0 && x0 < w, xIn1 = x1 >= 0 && x1 < w
        let yIn0 = y0 >= 0 && y0 < h, yIn1 = y1 >= 0 && y1 < h
        weights = (e * s, wx * s, e * ny, wx * ny)
        if yIn0 && xIn0 { offsets.0 = y0 * w + x0; inside |= 1 }
        if yIn0 && xIn1 { offsets.1 = y0 * w + x1; inside |= 2 }
        if yIn1 && xIn0 { offsets.2 = y1 * w + x0; inside |= 4 }
        if yIn1 && xIn1 { offsets.3 = y1 * w + x1; inside |= 8 }
    }

    @inline(__always)
    func value(in plane: UnsafePointer<Float>) -> Float {
        if isNaN { return .nan }
        if inside == 15 {
            return plane[offsets.0] * weights.0 + plane[offsets.1] * weights.1
                + plane[offsets.2] * weights.2 + plane[offsets.3] * weights.3
        }
        var v: Float = 0
        if inside & 1 != 0 { v += plane[offsets.0] * weights.0 }
        if inside & 2 != 0 { v += plane[offsets.1] * weights.1 }
        if inside & 4 != 0 { v += plane[offsets.2] * weights.2 }
        if inside & 8 != 0 { v += plane[offsets.3] * weights.3 }
        return v
    }
}
