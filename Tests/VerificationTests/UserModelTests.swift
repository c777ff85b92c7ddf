import Foundation
import Weights
import XCTest

/// Models built in user code, not through the registry, load and verify exactly like registered ones: the loader
/// reads the mapping family, parameter specs, inputs and activation paths from the model itself.
final class UserModelTests: XCTestCase {
    static let testsRoot = ((#filePath as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent

    /// A small MLP written the way a user would: layers composed in a struct, structure written once in
    /// `visitParameters`, outputs reported by module path.
    struct TwoLayerNet: SingleInputModel {
        var flatten = Identity()
        var fc1: Linear
        var act = ReLU()
        var fc2: Linear

        init(seed: UInt64) {
            var rng = ParameterInit.seeded(seed)
            fc1 = Linear(12, 8, rng: &rng)
            fc2 = Linear(8, 3, bias: false, rng: &rng).reported()
            bindModulePaths()
        }

        var name: String { "two_layer_net" }
        var mappingFamily: String { "user-mlp" }
        var inputSpecs: [TensorSpec] { [TensorSpec("input", [.batch, .fixed(12)])] }
        var outputSpecs: [TensorSpec] { [TensorSpec("logits", [.batch, .fixed(3)])] }

        mutating func visitParameters(_ v: inout some ParameterVisitor) {
            v.child("flatten", &flatten)
            v.child("fc1", &fc1)
            v.child("act", &act)
            v.child("fc2", &fc2)
        }

        func forwardUnchecked(_ x: FloatTensor, capture: ActivationCapture?) -> FloatTensor {
            fc2(act(fc1(flatten(x, capture: capture)), capture: capture), capture: capture)
        }
    }

    func testModelWrittenInUserCodeLoadsAndReportsItsPaths() throws {
        let source = TwoLayerNet(seed: 1)
        XCTAssertEqual(source.parameterKeys, ["fc1.weight", "fc1.bias", "fc2.weight"])
        XCTAssertEqual(source.activationPaths, ["flatten", "act", "fc2"])
        XCTAssertEqual(source.modulePaths, ["flatten", "fc1", "act", "fc2"])

        // Its state dict written as safetensors, then loaded onto a differently seeded instance.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weights-user-model-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("net.safetensors").path
        let sd = StateDict(format: .safetensors, file: path, tensors: source.stateDict().map { TensorEntry(name: $0.key, tensor: $0.tensor) })
        let out = try AtomicOutput(destination: path)
        try SafetensorsWriter.write(sd, to: out, dtype: nil, metadata: [:])
        try out.commit(durable: false)

        var target = TwoLayerNet(seed: 2)
        let x = FloatTensor(shape: [2, 12], data: (0..<24).map { Float($0) / 12 - 1 })
        XCTAssertNotEqual(try target.forward(x).data, try source.forward(x).data)
        let report = try target.load(path)
        XCTAssertEqual(report.applied.count, 3)
        var seen: [String] = []
        XCTAssertEqual(try target.forward(x) { path, _ in seen.append(path) }.data, try source.forward(x).data)
        XCTAssertEqual(seen, target.activationPaths)
        // A model whose init forgot bindModulePaths() still reports under the walk's paths.
        var unbound = TwoLayerNet(seed: 2)
        unbound.fc2.modulePath = ""
        unbound.act.modulePath = "stale"
        XCTAssertFalse(unbound.modulePathsAreBound)
        var unboundSeen: [String] = []
        _ = try unbound.forward(x) { path, _ in unboundSeen.append(path) }
        XCTAssertEqual(unboundSeen, ["flatten", "act", "fc2"])
        XCTAssertTrue(target.modulePathsAreBound)
        XCTAssertThrowsError(try target.forward(FloatTensor(shape: [2, 11], repeating: 0))) {
            XCTAssertTrue("\($0)".contains("model two_layer_net: expected input [N, 12], found shape [2, 11]"), "\($0)")
        }
    }

    /// A ResNet configured in code under a name the registry does not know: the torchvision table is picked
    /// from the model's mapping family, and the result verifies against PyTorch like the registered `resnet18_tiny`.
    func testResNetBuiltInCodeVerifiesLikeTheRegisteredOne() throws {
        var model = try ResNet(ResNetConfig(name: "my_small_resnet", layers: [2, 2, 2, 2], widths: [4, 8, 16, 32], numClasses: 10, imgSize: 32))
        XCTAssertThrowsError(try ModelRegistry.entry(model.name))
        let report = try model.load(["\(Self.testsRoot)/VerificationTests/Fixtures/resnet18_tiny.zip.pth"])
        XCTAssertEqual(report.files.map(\.table), ["resnet.torchvision"])
        let ref = try ReferenceSet.load("\(Self.testsRoot)/ModelsTests/Fixtures/resnet18_tiny.reference.safetensors")
        let result = try Verifier.verify(model, reference: ref)
        XCTAssertTrue(result.passed)
        XCTAssertFalse(result.activations.isEmpty)
        XCTAssertNil(result.firstDivergence)
    }
}
