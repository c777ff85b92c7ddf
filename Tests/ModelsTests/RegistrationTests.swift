import Foundation
import XCTest
import TensorCore
@testable import Models

/// Parameter registration: keys, order, shapes, coverage, get/set errors, initialisation, derived caches.
final class RegistrationTests: XCTestCase {
    /// Full-size configurations PyTorch lists (Fixtures/full_size_specs.json: torchvision resnet18/34, the seed's
    /// CBAM-ResNets and ViTs built on the meta device) — keys, shapes, dtypes and order must equal ours.
    func testNamedModelsMatchPyTorchStateDictLayout() throws {
        // full_size_specs.json (Tools/make_model_fixtures.py) plus any other `*full_size_specs.json` (e.g.
        // seq_full_size_specs.json from Tools/make_seq_fixtures.py), merged.
        let main = try XCTUnwrap(Bundle.module.url(forResource: "full_size_specs", withExtension: "json", subdirectory: "Fixtures"))
        let dir = main.deletingLastPathComponent()
        let urls = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
            .filter { $0.hasSuffix("full_size_specs.json") }.map { dir.appendingPathComponent($0) }
        var json: [String: [[Any]]] = [:]
        for url in urls {
            let part = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: [[Any]]])
            json.merge(part) { a, _ in a }
        }
        XCTAssertEqual(Set(json.keys), Set(ModelRegistry.names.filter { !$0.hasSuffix("_tiny") && !$0.hasPrefix("vit_tiny") }))
        for (name, rows) in json {
            let want = rows.map { r in "\(r[0] as! String) \(r[1] as! [Int]) \(r[2] as! String)" }
            let got = try ModelRegistry.entry(name).parameterSpecs.map { "\($0.key) \($0.shape) \($0.dtype.rawValue)" }
            XCTAssertEqual(got, want, name)
        }
    }

    /// The listing from a meta build (shapes only) equals what a seeded build registers, for every named model
    /// small enough to build here and for odd option combinations.
    func testMetaSpecsEqualBuiltModels() throws {
        let cases: [(String, [String])] = [
            ("resnet18", []), ("resnet18_cbam", []), ("resnet18_tiny", []), ("resnet18_cbam_tiny", []),
            ("resnet18_tiny", ["layers=1,3,1,2", "widths=32,32,48,64", "num_classes=3", "in_chans=1", "cbam=true",
                               "cbam_ratio=8", "spatial_kernel=3"]),
            ("resnet50_tiny", []), ("resnet50_cbam_tiny", []), ("resnet101_cbam", []),
            ("resnet50_tiny", ["layers=2,1,1,3", "widths=4,8,6,2", "num_classes=3", "in_chans=2", "cbam=true",
                               "cbam_ratio=4", "spatial_kernel=5"]),
            ("senet18_tiny", []), ("senet18", ["widths=8,8,12,12", "num_classes=2", "in_chans=1", "reduction=4"]),
            ("vit_tiny_patch8_32", []),
            ("vit_tiny_patch8_32", ["img_size=16", "patch_size=4", "num_classes=0", "embed_dim=24", "depth=1", "num_heads=3",
                                    "mlp_ratio=2", "qkv_bias=false", "representation_size=0"]),
        ]
        for (name, config) in cases {
            let entry = try ModelRegistry.entry(name)
            let options = try entry.resolve(assignments: config)
            let built = try entry.make(options: options, seed: 1)
            let described = try entry.describe(options: options)
            XCTAssertEqual(built.parameterSpecs, described.parameterSpecs, "\(name) \(config)")
            XCTAssertEqual(built.parameterCount, described.parameterCount)
            XCTAssertEqual(built.activationPaths, described.activationPaths)
            XCTAssertEqual(built.inputSpecs, described.inputs)
        }
        // Familiar totals: torchvision resnet18 has 11,689,512 parameters; ViT-B/16 (1k) 86,567,656.
        XCTAssertEqual(try ModelRegistry.entry("resnet18").parameterCount, 11_689_512)
        XCTAssertEqual(try ModelRegistry.entry("vit_base_patch16_224").parameterCount, 86_567_656)
        // torchvision resnet50 / 101 / 152.
        XCTAssertEqual(try ModelRegistry.entry("resnet50").parameterCount, 25_557_032)
        XCTAssertEqual(try ModelRegistry.entry("resnet101").parameterCount, 44_549_160)
        XCTAssertEqual(try ModelRegistry.entry("resnet152").parameterCount, 60_192_808)
        XCTAssertEqual(Set(ModelRegistry.names).count, ModelRegistry.names.count, "names are unique across families")
        // ViT-H/14 is listed without allocating its 660M parameters (2.6 GB).
        XCTAssertEqual(try ModelRegistry.entry("vit_huge_patch14_224_in21k").parameterCount, 660_385_363)
    }

    // MARK: composition

    /// A stem as MobileViT-style code writes it: Sequential of blocks, each a Sequential(conv, bn, act) under
    /// `conv` — the keys `stem.0.conv.0.weight` and paths `stem.0`, `stem` fall out of the structure.
    struct StemBlock: Layer {
        var conv: ConvBNAct
        var modulePath = ""
        var reportsOutput: Bool { true }
        mutating func visitParameters(_ v: inout some ParameterVisitor) { v.child("conv", &conv) }
        func callAsFunction(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor { report(conv(x), to: capture) }
    }

    struct Composite: Module {
        var stem: Sequential<StemBlock>
        var pool = AdaptiveAvgPool2d(1, 1)
        mutating func visitParameters(_ v: inout some ParameterVisitor) {
            v.child("stem", &stem)
            v.child("pool", &pool)
        }
    }

    func testSequentialKeysAndPathsFallOutOfTheStructure() throws {
        var rng = ParameterInit.seeded(0)
        var c = Composite(stem: Sequential([
            StemBlock(conv: ConvBNAct(3, 4, kernel: 3, stride: 2, activation: .relu, rng: &rng)),
            StemBlock(conv: ConvBNAct(4, 4, kernel: 1, activation: .sigmoid, rng: &rng)),
        ]))
        c.bindModulePaths()
        var lister = SpecLister()
        c.visitParameters(&lister)
        XCTAssertEqual(lister.specs.map(\.key).filter { $0.hasSuffix("weight") },
                       ["stem.0.conv.0.weight", "stem.0.conv.1.weight", "stem.1.conv.0.weight", "stem.1.conv.1.weight"])
        XCTAssertEqual(lister.specs.first?.shape, [4, 3, 3, 3])
        XCTAssertEqual(c.reportedPaths, ["stem.0", "stem.1", "stem", "pool"])
        XCTAssertEqual(c.stem[1].modulePath, "stem.1")
        var seen: [String] = []
        let y = c.stem(FloatTensor(shape: [1, 3, 8, 8], repeating: 0.5)) { p, _ in seen.append(p) }
        XCTAssertEqual(y.shape, [1, 4, 4, 4])
        XCTAssertEqual(seen, ["stem.0", "stem.1", "stem"])
        XCTAssertTrue(y.data.allSatisfy { $0 > 0 && $0 < 1 }, "sigmoid applied")
    }

    // MARK: every stored tensor is registered (Mirror walk)

    /// Marks each registered float tensor with a unique first element.
    struct Marker: ParameterVisitor {
        var scope: [String] = []
        var next: Float = 1
        var counts = 0
        mutating func visit(key: String, tensor: inout FloatTensor, kind: ParameterKind) {
            if tensor.count > 0 { tensor.data[0] = 1_000_000 + next }
            next += 1
        }
        mutating func visit(key: String, int64: inout Int64) { int64 = 7_000 + Int64(counts); counts += 1 }
    }

    /// Collects every FloatTensor / numBatchesTracked reachable through stored properties.
    static func storedTensors(_ value: Any, into floats: inout [Float], ints: inout [Int64]) {
        if let t = value as? FloatTensor { floats.append(t.data.first ?? .nan); return }
        let m = Mirror(reflecting: value)
        for child in m.children {
            if child.label == "numBatchesTracked", let v = child.value as? Int64 { ints.append(v); continue }
            storedTensors(child.value, into: &floats, ints: &ints)
        }
    }

    func testMirrorFindsNoUnregisteredTensor() throws {
        for name in ["resnet18_tiny", "resnet18_cbam_tiny", "resnet50_cbam_tiny", "senet18_tiny", "vit_tiny_patch8_32"] {
            var model = try ModelRegistry.make(name: name)
            var marker = Marker()
            model.visitParameters(&marker)
            var floats: [Float] = [], ints: [Int64] = []
            Self.storedTensors(model, into: &floats, ints: &ints)
            let registered = (1..<Int(marker.next)).map { 1_000_000 + Float($0) }
            XCTAssertEqual(floats.sorted(), registered, "\(name): stored tensors not registered exactly once")
            XCTAssertEqual(ints.sorted(), (0..<marker.counts).map { 7_000 + Int64($0) }, name)
            XCTAssertEqual(floats.count + ints.count, model.parameterSpecs.count)
        }
    }

    // MARK: get / set

    func testSetAndGetErrors() throws {
        var model = try ModelRegistry.make(name: "resnet18_tiny")
        let cases: [(String, Tensor, String)] = [
            ("layer1.0.bn1.runing_mean", Tensor(shape: [4], floats: [0, 0, 0, 0]), "did you mean 'layer1.0.bn1.running_mean'"),
            ("fc.weight", Tensor(shape: [10, 31], floats: .init(repeating: 0, count: 310)), "expected shape [10, 32], found [10, 31]"),
            ("fc.bias", Tensor(dtype: .int32, shape: [10], bytes: .init(repeating: 0, count: 40)), "expected dtype float32, found int32"),
            ("bn1.num_batches_tracked", Tensor(shape: [], floats: [3]), "expected dtype int64, found float32"),
            ("bn1.num_batches_tracked", Tensor(dtype: .int64, shape: [1], bytes: .init(repeating: 0, count: 8)), "expected shape [], found [1]"),
            ("nothing.like.this", Tensor(shape: [1], floats: [0]), "model resnet18_tiny has no parameter 'nothing.like.this'"),
        ]
        for (key, value, fragment) in cases {
            XCTAssertThrowsError(try model.set(key, value), key) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(key): '\(error)' lacks '\(fragment)'")
            }
        }
        // Valid sets: half precision converts, num_batches_tracked takes an int64 scalar.
        try model.set("fc.bias", Tensor(shape: [10], floats: (0..<10).map(Float.init)).converted(to: .float16))
        XCTAssertEqual(FloatTensor(try model.get("fc.bias")).data, (0..<10).map(Float.init))
        try model.set("bn1.num_batches_tracked", Tensor(dtype: .int64, shape: [], bytes: withUnsafeBytes(of: Int64(42).littleEndian) { Array($0) }))
        let t = try model.get("bn1.num_batches_tracked")
        XCTAssertEqual(t.dtype, .int64)
        XCTAssertEqual(t.shape, [])
        XCTAssertEqual(t.bytes, withUnsafeBytes(of: Int64(42).littleEndian) { Array($0) })
        XCTAssertThrowsError(try model.get("fc.weights")) { XCTAssertTrue("\($0)".contains("did you mean 'fc.weight'")) }
        XCTAssertThrowsError(try ModelRegistry.make(name: "resnet-18")) { XCTAssertTrue("\($0)".contains("did you mean 'resnet18'")) }
    }

    func testForwardRejectsWrongInputShape() throws {
        let vit = try ModelRegistry.make(name: "vit_tiny_patch8_32")
        XCTAssertThrowsError(try vit.forward(FloatTensor(shape: [1, 3, 33, 32]))) {
            XCTAssertTrue("\($0)".contains("expected input [N, 3, 32, 32], found shape [1, 3, 33, 32]"), "\($0)")
        }
        let resnet = try ModelRegistry.make(name: "resnet18_tiny")
        XCTAssertThrowsError(try resnet.forward(FloatTensor(shape: [1, 1, 32, 32])))
        XCTAssertThrowsError(try ResNet(ResNetConfig(name: "bad", layers: [2, 2, 2, 2], widths: [8, 8, 8, 8], cbam: true)))
        XCTAssertThrowsError(try ModelRegistry.make(name: "resnet18_tiny", config: ["widths=8,8,8,8", "cbam=true"]))
    }

    // MARK: initialisation and caches

    func testSeededInitialisationIsDeterministic() throws {
        let a = try ModelRegistry.make(name: "vit_tiny_patch8_32", seed: 5).stateDict()
        let b = try ModelRegistry.make(name: "vit_tiny_patch8_32", seed: 5).stateDict()
        let c = try ModelRegistry.make(name: "vit_tiny_patch8_32", seed: 6).stateDict()
        XCTAssertEqual(a.map(\.tensor.bytes), b.map(\.tensor.bytes))
        XCTAssertNotEqual(a.map(\.tensor.bytes), c.map(\.tensor.bytes))
        // Defined defaults: BN weight 1, bias 0, running var 1; LayerNorm weight 1.
        let r = try ModelRegistry.make(name: "resnet18_tiny")
        XCTAssertEqual(FloatTensor(try r.get("layer2.0.bn2.running_var")).data, [Float](repeating: 1, count: 8))
        XCTAssertEqual(FloatTensor(try r.get("layer2.0.downsample.1.bias")).data, [Float](repeating: 0, count: 8))
        XCTAssertEqual(FloatTensor(try ModelRegistry.make(name: "vit_tiny_patch8_32").get("blocks.1.norm2.weight")).data, [Float](repeating: 1, count: 32))
        // Seeded weights give finite, non-constant outputs.
        let y = try r.forward(FloatTensor(shape: [1, 3, 32, 32], repeating: 0.5))
        XCTAssertTrue(y.data.allSatisfy(\.isFinite))
        XCTAssertGreaterThan(Set(y.data).count, 1)
    }

    /// Setting a BN statistic after a forward pass must invalidate the folded convolution, and copies must not share it.
    func testFoldedBatchNormFollowsParameterChanges() throws {
        var model = try XCTUnwrap(ModelRegistry.make(name: "resnet18_tiny", seed: 3) as? ResNet)
        let x = FloatTensor(shape: [1, 3, 32, 32], data: (0..<3072).map { Float($0 % 17) / 17 - 0.5 })
        let before = try model.forward(x)
        let original = model
        try model.set("bn1.running_mean", Tensor(shape: [4], floats: [0.5, -0.5, 1, 2]))
        let after = try model.forward(x)
        XCTAssertNotEqual(before.data, after.data)
        XCTAssertEqual(try original.forward(x).data, before.data, "copy kept its own folded weights")

        // Direct property mutation invalidates too, and matches a model built with that value from the start.
        var direct = try XCTUnwrap(ModelRegistry.make(name: "resnet18_tiny", seed: 3) as? ResNet)
        _ = try direct.forward(x)
        direct.bn1.runningMean = FloatTensor(shape: [4], data: [0.5, -0.5, 1, 2])
        XCTAssertEqual(try direct.forward(x).data, after.data)
        direct.layer3[1].bn2.weight.data[0] = 3
        XCTAssertNotEqual(try direct.forward(x).data, after.data)
    }

    /// A Linear layer's packed weight (the AVX-512 GEMM's copy, on CPUs that use it) must follow its weight: setting
    /// the weight after a forward pass, directly or through the parameter visitor's path, gives the new product,
    /// and a copy made before keeps the old one.
    func testLinearPackedWeightFollowsTheWeight() throws {
        var rng = ParameterInit.seeded(0)
        var layer = Linear(40, 70, rng: &rng)
        let x = rng.uniform([65, 40], bound: 1)
        let before = layer(x)
        let copy = layer
        layer.weight.data[0] = 5                     // feature 0, input 0
        let after = layer(x)
        XCTAssertNotEqual(after.data[0], before.data[0])
        XCTAssertEqual(after.data[0], before.data[0] + (5 - copy.weight.data[0]) * x.data[0], accuracy: 1e-4)
        XCTAssertEqual(copy(x).data, before.data, "the copy kept its own packed weight")
        layer.weight = FloatTensor(shape: [70, 40], data: [Float](repeating: 0, count: 70 * 40))
        XCTAssertEqual(layer(x).data, (0..<65).flatMap { _ in layer.bias!.data })
    }
}
