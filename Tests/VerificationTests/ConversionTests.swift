import Foundation
import Weights
import XCTest

/// The convert pipeline as a library call: table picked and applied, checked against a model, provenance written.
final class ConversionTests: XCTestCase {
    static let fixtures = ((#filePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("Fixtures")

    func testConvertOntoAModelThenLoadStrictly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weights-conversion-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = "\(Self.fixtures)/vit_tiny_patch8_32.jax.npz"
        let output = dir.appendingPathComponent("vit.safetensors").path
        let entry = try ModelRegistry.entry("vit_tiny_patch8_32")
        let options = ConversionOptions(model: try entry.describe())
        let result = try Converter.convert(input, to: output, options: options)
        XCTAssertEqual(result.prepared.table, "vit.jax-npz")
        XCTAssertEqual(result.prepared.metadata["model"], "vit_tiny_patch8_32")
        XCTAssertEqual(result.prepared.metadata["mapping_table"], "vit.jax-npz")
        XCTAssertEqual(result.prepared.metadata["source_format"], result.prepared.source.format.rawValue)

        var model = try entry.make()
        let report = try model.load([output], options: LoadOptions(mapping: .none))
        XCTAssertEqual(report.applied.count, model.parameterKeys.count)

        // Structured errors: the destination checks and a model the tensors do not fit.
        XCTAssertThrowsError(try Converter.convert(input, to: output, options: options)) {
            XCTAssertTrue(renderError($0).contains("already exists (use --force to overwrite)"), "\($0)")
        }
        XCTAssertThrowsError(try Converter.convert(input, to: input, options: options)) {
            guard case ConversionError.outputIsInput = $0 else { return XCTFail("\($0)") }
        }
        let other = try entry.describe(options: entry.resolve(assignments: ["depth=1"]))
        XCTAssertThrowsError(try Converter.prepare(input, options: ConversionOptions(model: other))) {
            guard case let ConversionError.doesNotFitModel(_, table, model, report) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(table, "vit.jax-npz")
            XCTAssertEqual(model, "vit_tiny_patch8_32")
            XCTAssertFalse(report.succeeded)
            XCTAssertTrue(renderError($0).contains("do not load onto vit_tiny_patch8_32 under strict"))
        }
    }
}
