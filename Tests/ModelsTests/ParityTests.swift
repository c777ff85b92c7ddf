import Foundation
import XCTest
import TensorCore
@testable import Models

/// Swift models against real PyTorch (fixtures from Tools/make_model_fixtures.py, versions in Fixtures/VERSIONS.txt).
///
/// Tolerance, as the `verify` command defines it: every element must satisfy |Δ| ≤ atol + rtol·|ref| with
/// atol = 1e-4·max|ref| and rtol = 1e-4. Float32 on both sides; differences come from summation order
/// (OpenBLAS vs oneDNN, folded batch norm), typically ~1e-6 relative.
final class ParityTests: XCTestCase {
    struct Comparison: CustomStringConvertible {
        var maxAbsError: Float = 0
        var maxAbsReference: Float = 0
        var worstIndex = -1
        var failures = 0
        var description: String {
            "max|Δ| \(maxAbsError) vs max|ref| \(maxAbsReference) (ratio \(maxAbsReference > 0 ? maxAbsError / maxAbsReference : 0)), "
                + "worst index \(worstIndex), \(failures) elements out of tolerance"
        }
    }

    static func compare(_ got: FloatTensor, _ ref: FloatTensor, rtol: Float = 1e-4) -> Comparison {
        var c = Comparison()
        c.maxAbsReference = ref.maxAbs
        let atol = 1e-4 * c.maxAbsReference
        for i in 0..<min(got.count, ref.count) {
            let d = abs(got.data[i] - ref.data[i])
            if d > c.maxAbsError || d.isNaN { c.maxAbsError = d; c.worstIndex = i }
            if !(d <= atol + rtol * abs(ref.data[i])) { c.failures += 1 }
        }
        return c
    }

    /// Builds `name` from the registry and loads every tensor of its fixture state dict with `set`.
    static func loadTiny(_ name: String) throws -> (any Model, SafetensorsFixture) {
        var model = try ModelRegistry.make(name: name, seed: 99)
        let weights = try SafetensorsFixture(named: "\(name).weights")
        for key in weights.keys { try model.set(key, try weights.tensor(key)) }
        return (model, weights)
    }

    func checkParity(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (model, weights) = try Self.loadTiny(name)
        // Same keys, same order as PyTorch's state_dict().
        let order = try XCTUnwrap(weights.metadata["state_dict_order"], file: file, line: line).split(separator: ",").map(String.init)
        XCTAssertEqual(model.parameterKeys, order, "state_dict order", file: file, line: line)
        XCTAssertEqual(Set(model.parameterKeys), Set(weights.keys), file: file, line: line)
        // Every value round-trips bit-exactly (including the int64 num_batches_tracked).
        for key in weights.keys {
            XCTAssertEqual(try model.get(key).bytes, try weights.tensor(key).bytes, key, file: file, line: line)
        }

        let ref = try SafetensorsFixture(named: "\(name).reference")
        let input = try ref.floats("input")
        var captured: [String: FloatTensor] = [:]
        var capturedOrder: [String] = []
        let output = try model.forward(input) { path, value in captured[path] = value; capturedOrder.append(path) }
        XCTAssertEqual(capturedOrder, model.activationPaths, "reported paths", file: file, line: line)

        let want = try ref.floats("output")
        XCTAssertEqual(output.shape, want.shape, file: file, line: line)
        let c = Self.compare(output, want)
        print("parity \(name) output \(output.shape): \(c)")
        XCTAssertEqual(c.failures, 0, "\(name) output: \(c)", file: file, line: line)

        for key in ref.keys where key != "input" && key != "output" {
            let r = try ref.floats(key)
            guard let got = captured[key] else { XCTFail("\(name): no activation captured at \(key)", file: file, line: line); continue }
            XCTAssertEqual(got.shape, r.shape, "\(name) \(key) shape", file: file, line: line)
            let ci = Self.compare(got, r)
            print("parity \(name) \(key) \(r.shape): \(ci)")
            XCTAssertEqual(ci.failures, 0, "\(name) \(key): \(ci)", file: file, line: line)
        }
    }

    func testResNet18TinyMatchesPyTorch() throws { try checkParity("resnet18_tiny") }
    func testResNet18CBAMTinyMatchesPyTorch() throws { try checkParity("resnet18_cbam_tiny") }
    func testViTTinyMatchesPyTorch() throws { try checkParity("vit_tiny_patch8_32") }
    func testResNet50TinyMatchesPyTorch() throws { try checkParity("resnet50_tiny") }
    func testResNet50CBAMTinyMatchesPyTorch() throws { try checkParity("resnet50_cbam_tiny") }
    func testSENet18TinyMatchesPyTorch() throws { try checkParity("senet18_tiny") }

    /// A seeded (unloaded) model must not accidentally match: proves the comparison can fail.
    func testUnloadedModelDoesNotMatch() throws {
        let model = try ModelRegistry.make(name: "resnet18_tiny", seed: 99)
        let ref = try SafetensorsFixture(named: "resnet18_tiny.reference")
        let c = Self.compare(try model.forward(try ref.floats("input")), try ref.floats("output"))
        XCTAssertGreaterThan(c.failures, 0)
    }

    /// Full-size random-weight parity (resnet18, resnet18_cbam, vit_base_patch16_224_in21k). Off by default:
    /// `/work/venv/bin/python Tools/make_model_fixtures.py --full /tmp/full-parity` then
    /// `WEIGHTS_FULL_PARITY_DIR=/tmp/full-parity swift test --filter ParityTests/testFullSize` (release build
    /// recommended: `-c release`).
    func testFullSizeMatchesPyTorch() throws {
        guard let dir = ProcessInfo.processInfo.environment["WEIGHTS_FULL_PARITY_DIR"] else {
            throw XCTSkip("set WEIGHTS_FULL_PARITY_DIR (see Tools/make_model_fixtures.py --full)")
        }
        for name in ["resnet18", "resnet18_cbam", "vit_base_patch16_224_in21k"] {
            var model = try ModelRegistry.make(name: name)
            let weights = try SafetensorsFixture(url: URL(fileURLWithPath: dir).appendingPathComponent("\(name).weights.safetensors"))
            XCTAssertEqual(Set(model.parameterKeys), Set(weights.keys), name)
            for key in weights.keys { try model.set(key, try weights.tensor(key)) }
            let ref = try SafetensorsFixture(url: URL(fileURLWithPath: dir).appendingPathComponent("\(name).reference.safetensors"))
            var captured: [String: FloatTensor] = [:]
            let out = try model.forward(try ref.floats("input")) { captured[$0] = $1 }
            for key in ref.keys where key != "input" {
                let got = key == "output" ? out : try XCTUnwrap(captured[key], "\(name): \(key) not captured")
                let c = Self.compare(got, try ref.floats(key))
                print("full-size parity \(name) \(key): \(c)")
                XCTAssertEqual(c.failures, 0, "\(name) \(key): \(c)")
            }
        }
    }
}
