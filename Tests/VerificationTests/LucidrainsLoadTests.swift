import Foundation
import Weights
import XCTest

/// Today's vit-pytorch checkpoints (cls_token [1, dim], pos_embedding [n+1, dim]) onto `lucidrains_vit`, whose keys
/// follow seed 004 ([1, 1, dim], [1, n+1, dim]): the table `lucidrains_vit.vit-pytorch` is picked from the keys and
/// adds the batch axis. The files hold the weights of `lucidrains_vit_tiny`'s fixture, so PyTorch's reference for that
/// fixture applies (Tools/make_lucidrains_fixtures.py checks this before writing them).
final class LucidrainsLoadTests: XCTestCase {
    let support = Support()

    /// EndToEndTests' parity check (that class is final): load `files` onto a fresh `model`, verify against PyTorch.
    struct Support {
        func fixture(_ name: String) -> String { "\(EndToEndTests.testsRoot)/VerificationTests/Fixtures/\(name)" }
        func modelFixture(_ name: String) -> String { "\(EndToEndTests.testsRoot)/ModelsTests/Fixtures/\(name)" }

        @discardableResult
        func assertParity(_ model: String, _ files: [String], table: String, file: StaticString = #filePath, line: UInt = #line) throws -> LoadReport {
            var m = try ModelRegistry.make(name: model)
            let report = try m.load(files)
            XCTAssertEqual(report.files.map(\.table), [table], file: file, line: line)
            let result = try Verifier.verify(m, reference: try ReferenceSet.load(modelFixture("\(model).reference.safetensors")))
            let out = result.outputs[0]
            XCTAssertTrue(result.passed, "\(files): max|Δ| \(out.maxAbsError) vs max|ref| \(out.maxAbsReference), first divergence \(result.firstDivergence ?? "-")",
                          file: file, line: line)
            XCTAssertEqual(out.top1Agreement, 1, file: file, line: line)
            XCTAssertNil(result.firstDivergence, file: file, line: line)
            XCTAssertFalse(result.activations.isEmpty, "the reference's intermediates are compared too", file: file, line: line)
            return report
        }
    }

    func testTodaysStateDict() throws {
        let report = try support.assertParity("lucidrains_vit_tiny", [support.fixture("lucidrains_vit_tiny.vit-pytorch.pth")],
                                              table: "lucidrains_vit.vit-pytorch")
        XCTAssertEqual(report.applied.first { $0.key == "cls_token" }?.sources, ["cls_token"])
    }

    /// `torch.save(model)`: the pickled module is read without running code and its parameters become the state dict.
    func testWholeModule() throws {
        try support.assertParity("lucidrains_vit_tiny", [support.fixture("lucidrains_vit_tiny.vit-pytorch-module.pth")],
                                 table: "lucidrains_vit.vit-pytorch")
    }

    /// Seed 004's own layout goes through the same table unchanged.
    func testSeedLayoutThroughTheTable() throws {
        try support.assertParity("lucidrains_vit_tiny", [support.modelFixture("lucidrains_vit_tiny.weights.safetensors")],
                                 table: "lucidrains_vit.vit-pytorch")
    }

    /// The PreNorm layout's files are not taken for the current layout's, and the other way round.
    func testLayoutsAreNotConfused() throws {
        var current = try ModelRegistry.make(name: "lucidrains_vit_tiny")
        XCTAssertThrowsError(try current.load(support.modelFixture("lucidrains_vit_prenorm_tiny.weights.safetensors")))
        var pre = try ModelRegistry.make(name: "lucidrains_vit_prenorm_tiny")
        XCTAssertThrowsError(try pre.load(support.fixture("lucidrains_vit_tiny.vit-pytorch.pth")))
        try support.assertParity("lucidrains_vit_prenorm_tiny", [support.modelFixture("lucidrains_vit_prenorm_tiny.weights.safetensors")],
                                 table: "identity")
        try support.assertParity("simple_vit_tiny", [support.modelFixture("simple_vit_tiny.weights.safetensors")], table: "identity")
        try support.assertParity("crate_tiny", [support.modelFixture("crate_tiny.weights.safetensors")], table: "identity")
    }
}
