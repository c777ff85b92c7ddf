import XCTest
import Checkpoints
import TensorCore
@testable import WeightMapping

final class WeightLoaderTests: XCTestCase {
    let expected = [ExpectedParameter(key: "conv1.weight", shape: [2]), ExpectedParameter(key: "ca.fc.0.weight", shape: [3]),
                    ExpectedParameter(key: "fc.weight", shape: [4])]

    func identityResult(_ items: [(String, [Int])], file: String) throws -> MappingResult {
        try MappingTable.identity().apply(to: makeDict(items, file: file), expectedKeys: Set(expected.map(\.key)))
    }

    func testStrictReportsMissingWithSuggestion() throws {
        let r = try identityResult([("conv1.weight", [2]), ("fc.weight", [4])], file: "a")
        var raw = try MappingTable.identity().apply(to: makeDict([("conv1.weight", [2]), ("fc.weight", [4]), ("ca.fc.0.weigth", [3])], file: "a"))
        raw.file = "a"
        XCTAssertThrowsError(try WeightLoader.load([raw], expected: expected, policy: .strict)) { error in
            let report = (error as? MappingError)?.report
            XCTAssertEqual(report?.missing.map(\.key), ["ca.fc.0.weight"])
            XCTAssertEqual(report?.missing.first?.suggestion, "ca.fc.0.weigth")
            XCTAssertEqual(report?.unused.first?.suggestion, "ca.fc.0.weight")
            XCTAssertEqual(report?.applied.count, 2, "the report is complete even when the load fails")
        }
        // Merge keeps the model's value and lists it.
        let merged = try WeightLoader.load([r], expected: expected, policy: .merge)
        XCTAssertEqual(merged.report.kept, ["ca.fc.0.weight"])
        XCTAssertEqual(merged.values.map(\.key), ["conv1.weight", "fc.weight"])
    }

    func testSecondFileCompletesMerge() throws {
        let a = try identityResult([("conv1.weight", [2]), ("fc.weight", [4])], file: "a")
        let b = try identityResult([("ca.fc.0.weight", [3])], file: "b")
        let result = try WeightLoader.load([a, b], expected: expected, policy: .strict)
        XCTAssertEqual(result.values.map(\.key), ["conv1.weight", "ca.fc.0.weight", "fc.weight"])
        XCTAssertTrue(result.report.kept.isEmpty)
    }

    func testConflictingFilesNameBothSources() throws {
        let a = try identityResult([("conv1.weight", [2])], file: "a.pth")
        let b = try MappingTable.identity().apply(to: StateDict(format: .safetensors, file: "b.safetensors", tensors: [
            TensorEntry(name: "conv1.weight", tensor: Tensor(shape: [2], floats: [9, 9]))]), expectedKeys: ["conv1.weight"])
        XCTAssertThrowsError(try WeightLoader.load([a, b], expected: expected, policy: .merge)) { error in
            XCTAssertTrue("\(error)".contains("a.pth") && "\(error)".contains("b.safetensors"), "\(error)")
        }
        // Identical values: noted, not an error.
        let same = try WeightLoader.load([a, a], expected: expected, policy: .merge)
        XCTAssertEqual(same.report.notes.count, 1)
    }

    func testPartialSkipsShapeMismatch() throws {
        let r = try identityResult([("conv1.weight", [2]), ("fc.weight", [1000])], file: "a")
        XCTAssertThrowsError(try WeightLoader.load([r], expected: expected, policy: .merge))
        let p = try WeightLoader.load([r], expected: expected, policy: .partial)
        XCTAssertEqual(p.report.mismatched.map(\.key), ["fc.weight"])
        XCTAssertEqual(p.report.mismatched.first?.found, [1000])
        XCTAssertTrue(p.report.kept.contains("fc.weight"))
        XCTAssertEqual(p.values.map(\.key), ["conv1.weight"])
    }

    func testOptionalKeysAreKeptUnderStrict() throws {
        var table = MappingTable.identity()
        table.optional = [try KeyPattern("ca.*")]
        let r = try table.apply(to: makeDict([("conv1.weight", [2]), ("fc.weight", [4])]), expectedKeys: Set(expected.map(\.key)))
        let result = try WeightLoader.load([r], expected: expected, policy: .strict)
        XCTAssertEqual(result.report.kept, ["ca.fc.0.weight"])
    }

    func testAutoDetectionAmbiguityListsCandidates() throws {
        let t1 = try MappingTable.parse("name: one\nfamily: f\ndetect: {require: [a]}\nidentity: true\n", file: "one.yaml")
        let t2 = try MappingTable.parse("name: two\nfamily: f\ndetect: {require: [a]}\nidentity: true\n", file: "two.yaml")
        let catalog = MappingCatalog(tables: [t1, t2])
        XCTAssertThrowsError(try catalog.resolve(.auto, for: makeDict([("a", [1])]))) { error in
            XCTAssertTrue("\(error)".contains("one (one.yaml)") && "\(error)".contains("two (two.yaml)"), "\(error)")
        }
        XCTAssertEqual(try catalog.resolve(.named("two"), for: makeDict([("a", [1])])).name, "two")
        // A file whose keys already are the model's needs no table.
        XCTAssertEqual(try catalog.resolve(.auto, for: makeDict([("x", [1])]), expectedKeys: ["x", "y"]).name, "identity")
    }
}
