/// MobileViT's patch unfold and fold (einops `rearrange` in vit-pytorch's `MobileViTBlock`):
///   unfold: `b d (h ph) (w pw) -> b (ph pw) (h w) d`
///   fold:   `b (ph pw) (h w) d -> b d (h ph) (w pw)`
/// Each pixel position inside a patch becomes its own sequence of (h·w) tokens of width d.
extension Kernels {
    /// x [B, D, H, W] → [B, ph·pw, (H/ph)·(W/pw), D]; H and W must be multiples of the patch size.
    public static func patchUnfold(_ x: FloatTensor, patch: (h: Int, w: Int)) -> FloatTensor {
        precondition(x.rank == 4 && patch.h > 0 && patch.w > 0 && x.shape[2] % patch.h == 0 && x.shape[3] % patch.w == 0,
                     "patchUnfold: \(x.shape) is not [B, D, H, W] with H, W multiples of \(patch.h)×\(patch.w)")
        let (b, d, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (ph, pw) = patch
        let (nh, nw) = (h / ph, w / pw)
        return FloatTensor(shape: [b, ph * pw, nh * nw, d]) { ob in
            guard b * d * h * w > 0 else { return }
            let o = SendablePointer(ob.baseAddress!)
            x.data.withUnsafeBufferPointer { xb in
                let xp = SendableConstPointer(xb.baseAddress!)
                // One item per output row block (image, patch position, patch row): nw tokens × d.
                Parallel.forEachChunk(b * ph * pw * nh, costPerItem: nw * d) { range in
                    for item in range {
                        let hy = item % nh, p = (item / nh) % (ph * pw), img = item / (nh * ph * pw)
                        let (py, px) = (p / pw, p % pw)
                        let src = xp.p + img * d * h * w + (hy * ph + py) * w + px
                        let dst = o.p + item * nw * d
                        for wx in 0..<nw {
                            let s = src + wx * pw, t = dst + wx * d
                            for c in 0..<d { t[c] = s[c * h * w] }
                        }
                    }
                }
            }
        }
    }

    /// The inverse of `patchUnfold`: x [B, ph·pw, nh·nw, D] → [B, D, nh·ph, nw·pw].
    public static func patchFold(_ x: FloatTensor, patch: (h: Int, w: Int), grid: (h: Int, w: Int)) -> FloatTensor {
        let (ph, pw) = patch, (nh, nw) = grid
        precondition(x.rank == 4 && ph > 0 && pw > 0 && x.shape[1] == ph * pw && x.shape[2] == nh * nw,
                     "patchFold: \(x.shape) is not [B, \(ph)·\(pw), \(nh)·\(nw), D]")
        let (b, d) = (x.shape[0], x.shape[3])
        let (h, w) = (nh * ph, nw * pw)
        return FloatTensor(shape: [b, d, h, w]) { ob in
            guard b * d * h * w > 0 else { return }
            let o = SendablePointer(ob.baseAddress!)
            x.data.withUnsafeBufferPointer { xb in
                let xp = SendableConstPointer(xb.baseAddress!)
                // One item per output row (image, channel, row); reads d-strided tokens.
                Parallel.forEachChunk(b * d * h, costPerItem: w) { range in
                    for item in range {
                        let y = item % h, c = (item / h) % d, img = item / (h * d)
                        let (hy, py) = (y / ph, y % ph)
                        let dst = o.p + item * w
                        for x in 0..<w {
                            let (wx, px) = (x / pw, x % pw)
                            let p = py * pw + px, t = hy * nw + wx
                            dst[x] = xp.p[((img * ph * pw + p) * nh * nw + t) * d + c]
                        }
                    }
                }
            }
        }
    }
}
