// Seed 000's spatial transformer network `STN(c, h, w)` with its `LocalNetwork`: affine_grid + grid_sample at
// PyTorch's defaults (bilinear, zeros, align_corners=False), then a two-conv classifier. Two outputs.
import TensorCore

/// Hyper-parameters of the seed's `STN`. The seed fixes the classifier's input (16·8·8, for 32×32 images), hidden
/// width (1024) and classes (10); here the input follows (c, h, w) and the other two are options whose defaults
/// are the seed's, so `stn` is exactly the seed's `STN(3, 32, 32)`.
public struct STNConfig: Sendable, Equatable {
    public var name: String
    public var channels: Int
    public var height: Int
    public var width: Int
    public var hidden: Int
    public var numClasses: Int

    public init(name: String, channels: Int = 3, height: Int = 32, width: Int = 32, hidden: Int = 1024, numClasses: Int = 10) {
        self.name = name; self.channels = channels; self.height = height; self.width = width
        self.hidden = hidden; self.numClasses = numClasses
    }

    /// The seed's `LocalNetwork.forward` reads `batch, c, w, h = img.shape` (H and W swapped) and samples a grid of
    /// `(h, w)`: the transformed image is width × height. Two stride-2 convolutions then quarter each side.
    var sampledSize: (h: Int, w: Int) { (width, height) }
    var featureCount: Int {
        let q = { (n: Int) in ((n + 1) / 2 + 1) / 2 }
        return 16 * q(sampledSize.h) * q(sampledSize.w)
    }

    func validate() throws {
        guard (1...65536).contains(channels), (1...65536).contains(height), (1...65536).contains(width), hidden >= 1,
              numClasses >= 1, channels * height * width <= 1 << 28 else {
            throw ModelError.invalidConfiguration("\(name): c \(channels), h \(height), w \(width), hidden \(hidden), classes \(numClasses)")
        }
    }
}

/// The seed's `LocalNetwork`: `fc` = Sequential(Linear(c·h·w, 20), Tanh, Linear(20, 6), Tanh) predicts θ [N, 2, 3];
/// the image is resampled on `affine_grid(θ)`. Reports the transformed image as `local_net`.
public struct LocalNetwork: Layer {
    public var fc1: Linear
    public var fc2: Linear
    public let sampledSize: (h: Int, w: Int)
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(_ c: STNConfig, rng: inout ParameterInit) {
        fc1 = Linear(c.channels * c.height * c.width, 20, rng: &rng)
        fc2 = Linear(20, 6, rng: &rng)
        sampledSize = c.sampledSize
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("fc.0", &fc1)
        v.child("fc.2", &fc2)
    }

    public func callAsFunction(_ img: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        let n = img.shape[0]
        let flat = img.reshaped([n, img.count / Swift.max(n, 1)])
        let theta = fc2(fc1(flat, activation: .tanh), activation: .tanh).reshaped([n, 2, 3])
        let grid = Kernels.affineGrid(theta: theta, height: sampledSize.h, width: sampledSize.w)
        return report(Kernels.gridSample(img, grid: grid), to: capture)
    }
}

/// `conv` = Sequential(Conv2d(c, 16, 3, 2, 1), ReLU, Conv2d(16, 16, 3, 2, 1), ReLU), reported as `conv`.
public struct STNFeatures: Layer {
    public var conv1: Conv2d
    public var conv2: Conv2d
    public var modulePath = ""
    public var reportsOutput: Bool { true }

    public init(channels: Int, rng: inout ParameterInit) {
        conv1 = Conv2d(channels, 16, kernel: 3, stride: 2, padding: 1, rng: &rng)
        conv2 = Conv2d(16, 16, kernel: 3, stride: 2, padding: 1, rng: &rng)
    }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("0", &conv1)
        v.child("2", &conv2)
    }

    public func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
        report(conv2(conv1(x, activation: .relu), activation: .relu), to: capture)
    }
}

/// The seed's `STN`: `local_net` (transformed image, output 0), `conv`, flatten, `fc` = Sequential(Linear, ReLU,
/// Linear) (logits, output 1).
public struct STN: Model {
    public let config: STNConfig
    public var localNet: LocalNetwork
    public var conv: STNFeatures
    public var fc1: Linear
    public var fc2: Linear

    public init(_ config: STNConfig, seed: UInt64 = 0) throws {
        var rng = ParameterInit.seeded(seed)
        try self.init(config, rng: &rng)
    }

    public init(_ c: STNConfig, rng: inout ParameterInit) throws {
        try c.validate()
        config = c
        localNet = LocalNetwork(c, rng: &rng)
        conv = STNFeatures(channels: c.channels, rng: &rng)
        fc1 = Linear(c.featureCount, c.hidden, rng: &rng)
        fc2 = Linear(c.hidden, c.numClasses, rng: &rng)
        bindModulePaths()
    }

    public var name: String { config.name }
    public var mappingFamily: String { "stn" }

    public mutating func visitParameters(_ v: inout some ParameterVisitor) {
        v.child("local_net", &localNet)
        v.child("conv", &conv)
        v.child("fc.0", &fc1)
        v.child("fc.2", &fc2)
    }

    public var inputSpecs: [TensorSpec] {
        [.images(channels: config.channels, height: config.height, width: config.width)]
    }

    public var outputSpecs: [TensorSpec] {
        let s = config.sampledSize
        return [TensorSpec("image", [.batch, .fixed(config.channels), .fixed(s.h), .fixed(s.w)],
                           summary: "the input resampled on the predicted affine grid (the seed's H/W order)"),
                .logits(classes: config.numClasses)]
    }

    public func forwardUnchecked(inputs: [InputTensor], capture: ActivationCapture?) -> [FloatTensor] {
        guard let img = inputs.first?.floats else { preconditionFailure("\(name): forward without a validated float32 input") }
        let n = img.shape[0]
        let transformed = localNet(img, capture: capture)
        let features = conv(transformed, capture: capture)
        let flat = features.reshaped([n, features.count / Swift.max(n, 1)])
        return [transformed, fc2(Kernels.relu(fc1(flat)))]
    }
}
