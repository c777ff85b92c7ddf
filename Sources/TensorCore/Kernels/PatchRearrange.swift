/// vit-pytorch's patch flattening, einops `Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)')`. (Its `pool = 'mean'`
/// heads use `Kernels.meanTokens`, WindowAttention.swift.)
extension Kernels {
    /// x [B, C, H, W] → [B, (H/p)·(W/p), p·p·C], each patch's values ordered (row in patch, column in patch,
    /// channel) — channel fastest, unlike a convolution weight's (channel, row, column). H and W must be multiples
    /// of `p` (the einops pattern requires it).
    public static func patchRearrange(_ x: FloatTensor, patch p: Int) -> FloatTensor {
        precondition(x.rank == 4 && p > 0 && x.shape[2] % p == 0 && x.shape[3] % p == 0,
                     "patchRearrange: \(x.shape) is not [B, C, H, W] with H, W multiples of \(p)")
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (gh, gw) = (h / p, w / p)
        let row = p * p * c
        return FloatTensor(shape: [b, gh * gw, row]) { ob in
            guard ob.count > 0 else { return }
            let o = SendablePointer(ob.baseAddress!)
            x.data.withUnsafeBufferPointer { xb in
                let xp = SendableConstPointer(xb.baseAddress!)
                // One item per (image, patch row, row inside the patch): gw patches × p columns × c channels.
                Parallel.forEachChunk(b * gh * p, costPerItem: gw * p * c) { range in
                    for item in range {
                        let py = item % p, gy = (item / p) % gh, img = item / (p * gh)
                        let srcRow = xp.p + (img * c * h + gy * p + py) * w
                        for gx in 0..<gw {
                            let dst = o.p + ((img * gh + gy) * gw + gx) * row + py * p * c
                            for px in 0..<p {
                                let s = srcRow + gx * p + px, t = dst + px * c
                                for ch in 0..<c { t[ch] = s[ch * h * w] }
                            }
                        }
                    }
                }
            }
        }
    }
}
