import XCTest
@testable import WeightMapping

final class KeyPatternTests: XCTestCase {
    func testCapturesOneSegment() throws {
        let p = try KeyPattern("blocks.{i}.attn.qkv.weight")
        XCTAssertEqual(p.match("blocks.11.attn.qkv.weight"), ["i": "11"])
        XCTAssertNil(p.match("blocks.1.2.attn.qkv.weight"), "a plain capture must not cross dots")
        XCTAssertNil(p.match("blocks..attn.qkv.weight"), "a capture matches at least one character")
        XCTAssertNil(p.match("blocks.1.attn.qkv.weight.extra"))
    }

    func testCaptureInsideSegmentAndRepeatedNames() throws {
        let p = try KeyPattern("Transformer.encoderblock_{i}.LayerNorm_{i}.scale")
        XCTAssertEqual(p.match("Transformer.encoderblock_3.LayerNorm_3.scale"), ["i": "3"])
        XCTAssertNil(p.match("Transformer.encoderblock_3.LayerNorm_0.scale"), "the same name must capture the same text")
    }

    func testPathCaptureAndWildcard() throws {
        XCTAssertEqual(try KeyPattern("module.{rest*}").match("module.layer1.0.conv1.weight"), ["rest": "layer1.0.conv1.weight"])
        let w = try KeyPattern("*.num_batches_tracked")
        XCTAssertNotNil(w.match("layer1.0.bn1.num_batches_tracked"))
        XCTAssertNil(w.match("layer1.0.bn1.running_mean"))
        XCTAssertTrue(try KeyPattern("conv1.weight").isLiteral)
    }

    func testInstantiate() throws {
        let p = try KeyPattern("blocks.{i}.norm{n}.weight")
        XCTAssertEqual(try p.instantiate(["i": "4", "n": "2"]), "blocks.4.norm2.weight")
        XCTAssertThrowsError(try p.instantiate(["i": "4"])) { XCTAssertTrue("\($0)".contains("{n}")) }
    }

    func testMalformedPatterns() {
        for (text, fragment) in [("a.{i.b", "without a closing"), ("a.i}.b", "without an opening"),
                                 ("a.{}.b", "bad capture name"), ("a.{i}{j}", "separated by literal text")] {
            XCTAssertThrowsError(try KeyPattern(text), text) { XCTAssertTrue("\($0)".contains(fragment), "\(text): \($0)") }
        }
    }
}
