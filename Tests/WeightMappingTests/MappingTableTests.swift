import Foundation
import XCTest
import Checkpoints
import TensorCore
@testable import WeightMapping

/// Builds an in-memory checkpoint from (name, shape) pairs with distinct values.
func makeDict(_ items: [(String, [Int])], format: CheckpointFormat = .safetensors, file: String = "mem.safetensors") -> StateDict {
    var seed: Float = 0
    return StateDict(format: format, file: file, tensors: items.map { name, shape in
        let n = shape.reduce(1, *)
        let values = (0..<n).map { Float($0) + seed }
        seed += 1000
        return TensorEntry(name: name, tensor: Tensor(shape: shape, floats: values))
    })
}

final class MappingTableTests: XCTestCase {
    func testErrorsCiteFileAndLine() {
        let cases: [(String, String, String)] = [
            ("name: t\nfamily: vit\nrules:\n  - target: a.{i}\n    source: b\n", "t.yaml:4", "no source binds"),
            ("name: t\nfamily: vit\nbogus: 1\n", "t.yaml:3", "unknown table field 'bogus'"),
            ("name: t\nfamily: vit\nrules:\n  - target: a\n    source: b\n    transforms: [{rotate: 1}]\n", "t.yaml:6", "unknown transform 'rotate'"),
            ("name: t\nfamily: vit\nrules:\n  - target: a\n    source: b\n  - target: a\n    source: c\n", "t.yaml:6", "also produced by the rule at t.yaml:4"),
            ("name: t\nfamily: vit\nrules:\n  - target: a\n    sources: [b, c]\n", "t.yaml:4", "needs 'concat: DIM'"),
            ("name: t\nfamily: vit\nrules:\n  - targets: [a, b]\n    source: c\n    split: {dim: 0, sections: 3}\n", "t.yaml:4", "split into 3 sections but 2 targets"),
            ("name: t\nfamily: vit\nrules:\n  - target: a.*\n    source: b.{i}\n", "t.yaml:4", "wildcard"),
            ("name: t\nfamily: vit\ndetect:\n  format: [pickle]\n", "t.yaml:4", "unknown format 'pickle'"),
            ("family: vit\n", "t.yaml:1", "no 'name'"),
        ]
        for (yaml, location, fragment) in cases {
            XCTAssertThrowsError(try MappingTable.parse(yaml, file: "t.yaml"), fragment) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix(location + ":"), "expected \(location) in: \(text)")
                XCTAssertTrue(text.contains(fragment), "expected '\(fragment)' in: \(text)")
            }
        }
    }

    func testShippedTablesParse() throws {
        let dir = ((#filePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("../../Mappings")
        let catalog = try MappingCatalog.load(directory: dir)
        // The copy compiled into the binary is byte-for-byte the folder (rerun Tools/embed_mappings.py if not).
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }.sorted()
        // Every file is one table, named as its file (`<family>.<dialect>.yaml`); a new family's table is picked up
        // without editing this list.
        XCTAssertEqual(Set(catalog.tables.map(\.name)), Set(files.map { String($0.dropLast(".yaml".count)) }))
        XCTAssertTrue(Set(catalog.tables.map(\.name)).isSuperset(of: ["resnet.torchvision", "resnet_cbam.torchvision-merge", "resnet.h5-groups",
                                                                      "vit.timm", "vit.jax-npz", "vit.hf-transformers"]))
        XCTAssertEqual(BundledMappings.files.map(\.name), files)
        for (name, text) in BundledMappings.files {
            XCTAssertEqual(text, try String(contentsOfFile: dir + "/" + name, encoding: .utf8), "\(name) differs from its embedded copy: run Tools/embed_mappings.py")
        }
        XCTAssertEqual(Set(try MappingCatalog.standard().tables.map(\.name)), Set(catalog.tables.map(\.name)))
    }

    func testConcatRuleFusesQKVInOrder() throws {
        let table = try MappingTable.parse("""
            name: t
            family: vit
            rules:
              - target: blocks.{i}.qkv.weight
                sources: ["enc_{i}.q.kernel", "enc_{i}.k.kernel", "enc_{i}.v.kernel"]
                each: [{flatten: [1, 2]}, transpose]
                concat: 0
            """, file: "t.yaml")
        let sd = makeDict([("enc_0.q.kernel", [4, 2, 2]), ("enc_0.k.kernel", [4, 2, 2]), ("enc_0.v.kernel", [4, 2, 2]), ("stray", [1])])
        let r = try table.apply(to: sd)
        XCTAssertEqual(r.targets.map(\.key), ["blocks.0.qkv.weight"])
        XCTAssertEqual(r.targets[0].sources, ["enc_0.q.kernel", "enc_0.k.kernel", "enc_0.v.kernel"])
        XCTAssertEqual(r.unused, ["stray"])
        let t = try r.targets[0].entry.load()
        XCTAssertEqual(t.shape, [12, 4])
        // Row 0 of the fused weight is column 0 of q's [4, 4] kernel: q[0][0], q[1][0], ...
        XCTAssertEqual(Array(t.floats()[0..<4]), [0, 4, 8, 12])
        // Row 4 starts k (values offset by 1000).
        XCTAssertEqual(t.floats()[16], 1000)
    }

    func testSplitRule() throws {
        let table = try MappingTable.parse("""
            name: t
            family: vit
            rules:
              - targets: ["l.{i}.q", "l.{i}.k", "l.{i}.v"]
                source: blocks.{i}.qkv
                split: {dim: 0, sections: 3}
            """, file: "t.yaml")
        let r = try table.apply(to: makeDict([("blocks.7.qkv", [6, 2])]))
        XCTAssertEqual(r.targets.map(\.key), ["l.7.q", "l.7.k", "l.7.v"])
        XCTAssertEqual(try r.targets[2].entry.load().floats(), [8, 9, 10, 11])
        XCTAssertEqual(r.targets[1].entry.shape, [2, 2])
    }

    func testTransformThatDoesNotFitCitesRule() throws {
        let table = try MappingTable.parse("name: t\nfamily: vit\nrules:\n  - target: a\n    source: b\n    transforms: [{permute: [1, 0, 2]}]\n", file: "t.yaml")
        XCTAssertThrowsError(try table.apply(to: makeDict([("b", [2, 3])]))) { error in
            XCTAssertTrue("\(error)".hasPrefix("t.yaml:4:"), "\(error)")
            XCTAssertTrue("\(error)".contains("does not fit shape [2, 3]"), "\(error)")
        }
    }

    func testRootsPrefixesIgnoresAndDetection() throws {
        let table = try MappingTable.parse("""
            name: t
            family: resnet
            roots: [state_dict, ""]
            strip_prefixes: ["module."]
            detect: {require: [conv1.weight], forbid: ["*.ca.*"]}
            identity: true
            ignore: ["*.num_batches_tracked"]
            """, file: "t.yaml")
        let sd = makeDict([("state_dict.module.conv1.weight", [2]), ("state_dict.module.bn1.num_batches_tracked", [1]),
                           ("state_dict.module.fc.weight", [3]), ("optimizer.lr", [1])])
        XCTAssertTrue(table.detects(sd))
        let r = try table.apply(to: sd, expectedKeys: ["conv1.weight"])
        XCTAssertEqual(r.root, "state_dict")
        XCTAssertEqual(r.targets.map(\.key), ["conv1.weight"])
        XCTAssertEqual(r.ignored.map(\.key), ["bn1.num_batches_tracked"])
        XCTAssertEqual(r.unused, ["fc.weight"])
        XCTAssertFalse(table.detects(makeDict([("conv1.weight", [1]), ("layer1.0.ca.fc.0.weight", [1])])))
    }
}
