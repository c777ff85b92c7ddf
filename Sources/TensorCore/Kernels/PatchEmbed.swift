extension Kernels {
    /// A non-overlapping patch projection — `nn.Conv2d(C, D, kernel_size=p, stride=p)` followed by
    /// `flatten(2).transpose(1, 2)` — straight into token layout: [N, C, H, W] → [N, (H/p)·(W/p), D].
    /// Each patch is gathered into one row of C·p·p values (the windows do not overlap, so this is a permutation
    /// of the input, not an im2col expansion), then one `linear` with the weight viewed as [D, C·p·p].
    /// Rows and columns beyond the last whole patch are ignored, as the strided convolution does.
    public static func patchEmbed(_ x: FloatTensor, weight: FloatTensor, bias: FloatTensor?, patch p: Int) -> FloatTensor {
        precondition(x.rank == 4 && weight.rank == 4 && p > 0 && weight.shape[1] == x.shape[1]
                     && weight.shape[2] == p && weight.shape[3] == p,
                     "patchEmbed: input \(x.shape), weight \(weight.shape), patch \(p)")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (gh, gw) = (h / p, w / p)
        let row = c * p * p
        let patches = FloatTensor(shape: [n, gh * gw, row]) { ob in
            guard ob.count > 0 else { return }
            let o = SendablePointer(ob.baseAddress!)
            x.data.withUnsafeBufferPointer { xb in
                let xp = SendableConstPointer(xb.baseAddress!)
                // One item per (image, patch row): copies p-wide runs of the input image rows.
                Parallel.forEachChunk(n * gh, costPerItem: gw * row) { range in
                    for item in range {
                        let img = item / gh, py = item % gh
                        for ch in 0..<c {
                            for ky in 0..<p {
                                let src = xp.p + ((img * c + ch) * h + py * p + ky) * w
                                for px in 0..<gw {
                                    let dst = o.p + ((img * gh + py) * gw + px) * row + (ch * p + ky) * p
                                    dst.update(from: src + px * p, count: p)
                                }
                            }
                        }
                    }
                }
            }
        }
        return linear(patches, weight: weight.reshaped([weight.shape[0], row]), bias: bias)
    }
}
