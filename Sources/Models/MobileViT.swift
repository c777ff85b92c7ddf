// Seed 000's MobileViT (lucidrains vit-pytorch `mobile_vit.py`, PreNorm layout): conv 3×3/2 stem, four MV2Blocks,
// three (MV2Block, MobileViTBlock) stages, 1×1 conv + global mean + linear head.
import TensorCore

/// Hyper-parameters of the seed's `MobileViT` (patch 2×2, kernel 3, 4 heads of 8 in every transformer).
public struct MobileViTConfig: Sendable, Equatable {
    public var name: String
    public var imageSize: Int
    /// Transformer widths of the three MobileViT blocks.
    public var dims: [Int]
    /// The 11 channel counts: stem conv, stem MV2 outputs (4), trunk (6), head conv.
    public var channels: [Int]
    public var numClasses: Int
    public var expansion: Int
    public var depths: [Int]
    public let patch = 2, heads = 4, headDim = 8

    public init(name: String, imageSize: Int = 256, dims: [Int], channels: [Int], numClasses: Int = 1000,
                expansion: Int = 4, depths: [Int] = [2, 4, 3]) {
        self.name = name; self.imageSize = imageSize; self.dims = dims; self.channels = channels
        self.numClasses = numClasses; self.expansion = expansion; self.depths = depths
    }

    /// MLP widths of the three transformers: 2·dim, then 4·dim (as the seed writes them).
    var mlpDims: [Int] { [dims[0] * 2, dims[1] * 4, dims[2] * 4] }

    func validate() throws {
        // Five stride-2 stages, then 2×2 patches on the last map: the side must be a multiple of 64.
        guard dims.count == 3, depths.count == 3, channels.count == 11, imageSize >= 64, imageSize % 64 == 0,
              expansion >= 1, numClasses >= 1, dims.allSatisfy({ $0 >= 1 }), depths.allSatisfy({ $0 >= 0 }),
              channels.allSatisfy({ $0 >= 1 }) else {
            throw ModelError.invalidConfiguration(
                "\(name): needs 3 dims, 3 depths, 11 channels, an image side that is a multiple of 64 and positive sizes "
                + "(got dims \(dims), depths \(depths), \(channels.count) channels, image \(imageSize))")
        }
        // The seed's MobileViT only runs when these channel counts agree (its fourth stem block takes channels[2],
        // each MobileViTBlock the previous MV2Block's output).
        guard channels[2] == channels[3], channels[4] == channels[5], channels[6] == channels[7], channels[8] == channels[9] else {
            throw ModelError.invalidConfiguration("\(name): channels[2] = channels[3], [4] = [5], [6] = [7] and [8] = [9] are required, got \(channels)")
        }
    }
}

/// MobileNetV2's inverted residual (`MV2Block`): 1×1 expansion + BN + SiLU (absent when expansion is 1), 3×3
/// depthwise (stride 1 or 2) + BN + SiLU, 1×1 projection + BN, plus the input when the shape is kept.
/// Keys `conv.0`…`conv.7` (`conv.0`…`conv.4` without expansion).
public struct MV2Block: Layer {
    public var expand: ConvBatchNorm?
    public var depthwise: ConvBatchNorm
    public var project: ConvBatchNorm
    public let useResidual: Bool
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(_ inp: Int, _ oup: Int, stride: Int, expansion: Int, rng: inout ParameterInit) {
        let hidden = inp * expansion
        let k = expansion == 1 ? 0 : 3   // key offset of the depthwise conv inside `conv`
        if expansion != 1 {
            expand = ConvBatchNorm(inp, hidden, kernel: 1, convKey: "0", bnKey: "1", rng: &rng)
        }
        depthwise = ConvBatchNorm(hidden, hidden, kernel: 3, stride: stride, padding: 1, groups: hidden,
                                  convKey: String(k), bnKey: String(k + 1), rng: &rng)
        project = ConvBatchNorm(hidden, oup, kernel: 1, convKey: String(k + 3), bnKey: String(k + 4), rng: &rng)
        useResidual = stride == 1 && inp == oup
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("conv", &layers)
    }

    /// The `conv` Sequential's children, registered at their indices.
    private var layers: MV2Layers {
        get { MV2Layers(expand: expand, depthwise: depthwise, project: project) }
        set { expand = newValue.expand; depthwise = newValue.depthwise; project = newValue.project }
    }

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        var h = x
        if let expand { h = expand(h, activation: .silu) }
        h = depthwise(h, activation: .silu)
        return report(project(h, residual: useResidual ? x : nil), to: capture)
    }
}

/// The `conv` Sequential of an MV2Block (its ConvBatchNorms carry their own indices as keys).
struct MV2Layers: Module {
    var expand: ConvBatchNorm?
    var depthwise: ConvBatchNorm
    var project: ConvBatchNorm

    mutating func visitParameters(_ v: inout some ParameterVisitor) {
        if expand != nil { expand!.visitParameters(&v) }
        depthwise.visitParameters(&v)
        project.visitParameters(&v)
    }
}

/// The seed's `PreNorm(dim, Attention(dim, 4, 8))`: keys `norm.*`, `fn.to_qkv.weight` (no bias),
/// `fn.to_out.0.*`. Input [B·P, N, dim] (P = pixels per patch, N = patches).
public struct MobileViTAttention: Module, Sendable {
    public var norm: LayerNorm
    public var toQKV: Linear
    public var toOut: Linear
    public let heads: Int

    public init(dim: Int, heads: Int, headDim: Int, rng: inout ParameterInit) {
        norm = LayerNorm(dim, eps: 1e-5, rng: &rng)
        toQKV = Linear(dim, 3 * heads * headDim, bias: false, rng: &rng)
        toOut = Linear(heads * headDim, dim, rng: &rng)
        self.heads = heads
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("norm", &norm)
        v.child("fn.to_qkv", &toQKV)
        v.child("fn.to_out.0", &toOut)
    }

    /// x + attention(norm(x)).
    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        toOut(Kernels.multiHeadAttention(qkv: toQKV(norm(x)), heads: heads), residual: x)
    }
}

/// The seed's `PreNorm(dim, FeedForward(dim, mlp))`: keys `norm.*`, `fn.net.0.*` (Linear + SiLU), `fn.net.3.*`.
public struct MobileViTFeedForward: Module, Sendable {
    public var norm: LayerNorm
    public var fc1: Linear
    public var fc2: Linear

    public init(dim: Int, hidden: Int, rng: inout ParameterInit) {
        norm = LayerNorm(dim, eps: 1e-5, rng: &rng)
        fc1 = Linear(dim, hidden, rng: &rng)
        fc2 = Linear(hidden, dim, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("norm", &norm)
        v.child("fn.net.0", &fc1)
        v.child("fn.net.3", &fc2)
    }

    /// x + ff(norm(x)).
    public func callAsFunction(_ x: FloatTensor) -> FloatTensor {
        fc2(fc1(norm(x), activation: .silu), residual: x)
    }
}

/// One transformer layer, `layers.J` = ModuleList(PreNorm(Attention), PreNorm(FeedForward)) keyed `0`, `1`.
public struct MobileViTLayer: Module, Sendable {
    public var attention: MobileViTAttention
    public var feedForward: MobileViTFeedForward

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("0", &attention)
        v.child("1", &feedForward)
    }
}

/// `MobileViTBlock`: local 3×3 + 1×1 convolutions (`conv_nxn_bn` / `conv_1x1_bn` = conv + BN + SiLU), unfold into 2×2 patch sequences, transformer, fold back, 1×1
/// convolution, concatenation with the block input and a 3×3 fusion convolution.
public struct MobileViTBlock: Layer {
    public var conv1: ConvBNAct
    public var conv2: ConvBNAct
    public var layers: [MobileViTLayer]
    public var conv3: ConvBNAct
    public var conv4: ConvBNAct
    public let patch: Int
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(dim: Int, depth: Int, channel: Int, mlpDim: Int, config c: MobileViTConfig, rng: inout ParameterInit) {
        conv1 = ConvBNAct(channel, channel, kernel: 3, activation: .silu, rng: &rng)
        conv2 = ConvBNAct(channel, dim, kernel: 1, activation: .silu, rng: &rng)
        layers = (0..<depth).map { _ in
            MobileViTLayer(attention: MobileViTAttention(dim: dim, heads: c.heads, headDim: c.headDim, rng: &rng),
                           feedForward: MobileViTFeedForward(dim: dim, hidden: mlpDim, rng: &rng))
        }
        conv3 = ConvBNAct(dim, channel, kernel: 1, activation: .silu, rng: &rng)
        conv4 = ConvBNAct(2 * channel, channel, kernel: 3, activation: .silu, rng: &rng)
        patch = c.patch
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("conv1", &conv1)
        v.child("conv2", &conv2)
        v.children("transformer.layers", &layers)
        v.child("conv3", &conv3)
        v.child("conv4", &conv4)
    }

    public func callAsFunction(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        let local = conv2(conv1(input, capture: capture), capture: capture)
        let (b, d, h, w) = (local.shape[0], local.shape[1], local.shape[2], local.shape[3])
        // [B, d, H, W] → [B, P, N, d] → [B·P, N, d]: every pixel position of a patch is its own sequence.
        let unfolded = Kernels.patchUnfold(local, patch: (patch, patch))
        var x = unfolded.reshaped([b * patch * patch, unfolded.shape[2], d])
        for layer in layers { x = layer.feedForward(layer.attention(x)) }
        let folded = Kernels.patchFold(x.reshaped(unfolded.shape), patch: (patch, patch), grid: (h / patch, w / patch))
        let fused = Kernels.concat([conv3(folded, capture: capture), input], dim: 1)
        return report(conv4(fused, capture: capture), to: capture)
    }
}

/// One trunk stage, `trunk.N` = ModuleList(MV2Block, MobileViTBlock).
public struct MobileViTStage: Module, Sendable {
    public var downsample: MV2Block
    public var block: MobileViTBlock

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("0", &downsample)
        v.child("1", &block)
    }
}

/// The seed's `MobileViT` under its keys (`conv1`, `stem.N.conv.M`, `trunk.N.0`, `trunk.N.1`, `to_logits`).
public struct MobileViT: SingleInputModel {
    public let config: MobileViTConfig
    public var conv1: ConvBNAct
    public var stem: [MV2Block]
    public var trunk: [MobileViTStage]
    /// `to_logits.0`: conv_1x1_bn to the last width; then `Reduce('b c h w -> b c', 'mean')` and `to_logits.2`.
    public var headConv: ConvBNAct
    public var classifier: Linear

    public init(_ config: MobileViTConfig, seed: UInt64 = 0) throws {
        var rng = ParameterInit.seeded(seed)
        try self.init(config, rng: &rng)
    }

    public init(_ c: MobileViTConfig, rng: inout ParameterInit) throws {
        try c.validate()
        config = c
        let ch = c.channels, e = c.expansion
        conv1 = ConvBNAct(3, ch[0], kernel: 3, stride: 2, activation: .silu, rng: &rng).reported()
        stem = [MV2Block(ch[0], ch[1], stride: 1, expansion: e, rng: &rng),
                MV2Block(ch[1], ch[2], stride: 2, expansion: e, rng: &rng),
                MV2Block(ch[2], ch[3], stride: 1, expansion: e, rng: &rng),
                MV2Block(ch[2], ch[3], stride: 1, expansion: e, rng: &rng)]
        trunk = (0..<3).map { i in
            MobileViTStage(downsample: MV2Block(ch[3 + 2 * i], ch[4 + 2 * i], stride: 2, expansion: e, rng: &rng),
                           block: MobileViTBlock(dim: c.dims[i], depth: c.depths[i], channel: ch[5 + 2 * i], mlpDim: c.mlpDims[i],
                                                 config: c, rng: &rng))
        }
        headConv = ConvBNAct(ch[9], ch[10], kernel: 1, activation: .silu, rng: &rng).reported()
        classifier = Linear(ch[10], c.numClasses, bias: false, rng: &rng)
        bindModulePaths()
    }

    public var name: String { config.name }
    public var mappingFamily: String { "mobilevit" }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("conv1", &conv1)
        v.children("stem", &stem)
        v.children("trunk", &trunk)
        v.child("to_logits.0", &headConv)
        v.child("to_logits.2", &classifier)
    }

    public var inputSpecs: [TensorSpec] {
        [.images(channels: 3, height: config.imageSize, width: config.imageSize)]
    }

    public var outputSpecs: [TensorSpec] { [.logits(classes: config.numClasses)] }

    public func forwardUnchecked(_ input: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        var x = conv1(input, capture: capture)
        for block in stem { x = block(x, capture: capture) }
        for stage in trunk {
            x = stage.downsample(x, capture: capture)
            x = stage.block(x, capture: capture)
        }
        x = headConv(x, capture: capture)
        let pooled = Kernels.adaptiveAvgPool2d(x, outputSize: (1, 1))
        return classifier(pooled.reshaped([pooled.shape[0], pooled.shape[1]]))
    }
}
