import Foundation
import Weights
import XCTest

/// `CheckpointDiff` and `Merger` as library calls, on fixtures and on small files written at test time.
final class MergeDiffTests: XCTestCase {
    static let testsRoot = ((#filePath as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
    func fixture(_ name: String) -> String { "\(Self.testsRoot)/VerificationTests/Fixtures/\(name)" }
    func checkpointFixture(_ rel: String) -> String { "\(Self.testsRoot)/CheckpointsTests/Fixtures/\(rel)" }
    func modelFixture(_ name: String) -> String { "\(Self.testsRoot)/ModelsTests/Fixtures/\(name)" }

    private var tmp: URL!
    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("weights-mergediff-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    static func entry(_ name: String, _ dtype: DType, _ shape: [Int], _ values: [Double]) -> TensorEntry {
        let t = Tensor(dtype: .float64, shape: shape, bytes: values.withUnsafeBytes { Array($0) })
        return TensorEntry(name: name, tensor: t.converted(to: dtype))
    }

    static func entry<T>(_ name: String, _ dtype: DType, _ shape: [Int], raw values: [T]) -> TensorEntry {
        TensorEntry(name: name, tensor: Tensor(dtype: dtype, shape: shape, bytes: values.withUnsafeBytes { Array($0) }))
    }

    static func dict(_ entries: [TensorEntry], file: String = "", metadata: [MetadataEntry] = []) -> StateDict {
        StateDict(format: .safetensors, file: file, tensors: entries, metadata: metadata)
    }

    /// Writes a safetensors file at test time with the library's writer.
    func write(_ entries: [TensorEntry], to name: String, metadata: [String: String] = [:]) throws -> String {
        let p = path(name)
        let out = try AtomicOutput(destination: p)
        try SafetensorsWriter.write(Self.dict(entries), to: out, dtype: nil, metadata: metadata)
        try out.commit()
        return p
    }

    // MARK: diff

    /// A conversion compared with its source, in three formats: equal (exit 0 in the CLI); provenance shows up as
    /// metadata differences only.
    func testDiffOfAConversionIsEqual() throws {
        let input = fixture("resnet18_tiny.zip.pth")
        for format in ConversionOptions.Format.allCases {
            let out = path("r.\(format.rawValue)")
            try Converter.convert(input, to: out, options: ConversionOptions(format: format, mapping: .none))
            let r = try CheckpointDiff.compare(input, out)
            XCTAssertTrue(r.identical, "\(format): \(r.differences.map(\.name))")
            XCTAssertEqual(r.common, 122)
            XCTAssertEqual(r.equal, 122)
            XCTAssertEqual(r.maxAbs, 0)
            XCTAssertTrue(r.metadata.contains { $0.name == "source_file" && $0.a == nil && $0.b == "resnet18_tiny.zip.pth" })
            XCTAssertFalse(try CheckpointDiff.compare(input, out, options: DiffOptions(metadataCounts: true)).identical,
                           "with --metadata the provenance entries count")
        }
        // Every dtype (float8, complex, unsigned, packed float4/float6) through a safetensors round trip.
        let all = checkpointFixture("safetensors/all_dtypes.safetensors")
        let copy = path("all.safetensors")
        try Converter.convert(all, to: copy, options: ConversionOptions(mapping: .none))
        let r = try CheckpointDiff.compare(all, copy)
        XCTAssertTrue(r.identical, "\(r.differences.map(\.name))")
        XCTAssertEqual(r.equal, try Checkpoint.open(all).tensors.count)
        // A pre-1.0 file lacks the BN counters: listed as present in one file only.
        let legacy = try CheckpointDiff.compare(input, fixture("resnet18_tiny.legacy.pth"))
        XCTAssertFalse(legacy.identical)
        XCTAssertEqual(legacy.count(.onlyInA), 20)
        XCTAssertTrue(legacy.differences.allSatisfy { $0.name.hasSuffix("num_batches_tracked") && $0.dtypeA == .int64 && $0.shapeA == [] })
    }

    func testDiffReportsTheWorstElement() throws {
        let a = Self.dict([Self.entry("w", .float32, [3, 4], (0..<12).map(Double.init))])
        var values = (0..<12).map(Double.init)
        values[6] += 0.5      // [1, 2]
        values[11] += 0.25    // [2, 3]
        let b = Self.dict([Self.entry("w", .float32, [3, 4], values)])
        let r = try CheckpointDiff.compare(a, b)
        XCTAssertFalse(r.identical)
        let d = try XCTUnwrap(r.differences.first)
        XCTAssertEqual(d.status, .different)
        XCTAssertEqual(d.changes, [.values])
        let v = try XCTUnwrap(d.values)
        XCTAssertEqual(v.domain, .float64)
        XCTAssertEqual(v.maxAbs, 0.5)
        XCTAssertEqual(v.index, [1, 2])
        XCTAssertEqual(v.a, .real(6))
        XCTAssertEqual(v.b, .real(6.5))
        XCTAssertEqual(v.beyondTolerance, 2)
        XCTAssertEqual(v.elements, 12)
        XCTAssertEqual(r.maxAbs, 0.5)
        XCTAssertEqual(r.maxAbsTensor, "w")

        // Tolerances: |a−b| ≤ atol + rtol·|b|.
        XCTAssertEqual(try CheckpointDiff.compare(a, b, options: DiffOptions(atol: 0.3)).differences.first?.values?.beyondTolerance, 1)
        XCTAssertTrue(try CheckpointDiff.compare(a, b, options: DiffOptions(atol: 0.5)).identical)
        // rtol relative to b: 0.5 ≤ 0.1·6.5 passes, 0.25 ≤ 0.1·11.25 passes.
        XCTAssertTrue(try CheckpointDiff.compare(a, b, options: DiffOptions(rtol: 0.1)).identical)
        XCTAssertFalse(try CheckpointDiff.compare(a, b, options: DiffOptions(rtol: 0.05)).identical)
        let within = try CheckpointDiff.compare(a, b, options: DiffOptions(atol: 1))
        XCTAssertEqual(within.maxAbs, 0.5, "max|Δ| is reported even when within tolerance")
    }

    func testDiffNaNsAndInfinities() throws {
        let nan = Double.nan, inf = Double.infinity
        let a = Self.dict([Self.entry("x", .float32, [5], [nan, 1, inf, -0.0, 2]), Self.entry("y", .float16, [2], [nan, 1])])
        let b = Self.dict([Self.entry("x", .float32, [5], [nan, 1, inf, 0.0, 2]), Self.entry("y", .float16, [2], [1, nan])])
        let r = try CheckpointDiff.compare(a, b, options: DiffOptions(atol: 10, rtol: 10))
        XCTAssertEqual(r.equal, 1, "NaN at the same place, equal infinities and ±0 are equal")
        let y = try XCTUnwrap(r.differences.first { $0.name == "y" }?.values)
        XCTAssertEqual(y.beyondTolerance, 2, "NaN against a number differs whatever the tolerance")
        XCTAssertEqual(y.maxAbs, .infinity)
        XCTAssertEqual(y.index, [0])
        let c = Self.dict([Self.entry("x", .float32, [1], [inf])]), d = Self.dict([Self.entry("x", .float32, [1], [1e30])])
        XCTAssertFalse(try CheckpointDiff.compare(c, d, options: DiffOptions(rtol: 1e10)).identical, "an infinity equals only itself")
    }

    func testDiffIntegersExactlyAndOtherKinds() throws {
        // 2^62 and 2^62 + 1 are one float64: an integer comparison must see them differ.
        let a = Self.dict([Self.entry("i", .int64, [2], raw: [Int64(1) << 62, 5]),
                           Self.entry("u", .uint64, [1], raw: [UInt64.max]),
                           Self.entry("b", .bool, [3], raw: [UInt8(1), 0, 1]),
                           Self.entry("c", .complex64, [2], raw: [Float(1), 2, 3, 4]),
                           Self.entry("p", .float4_e2m1fn, [4], raw: [UInt8(0x21), 0x43])])
        let b = Self.dict([Self.entry("i", .int64, [2], raw: [(Int64(1) << 62) + 1, 5]),
                           Self.entry("u", .int64, [1], raw: [Int64(-1)]),
                           Self.entry("b", .bool, [3], raw: [UInt8(1), 1, 1]),
                           Self.entry("c", .complex64, [2], raw: [Float(1), 2, 3, 7]),
                           Self.entry("p", .float4_e2m1fn, [4], raw: [UInt8(0x21), 0x44])])
        let r = try CheckpointDiff.compare(a, b)
        func values(_ n: String) throws -> ValueDiff { try XCTUnwrap(r.differences.first { $0.name == n }?.values, n) }
        XCTAssertEqual(try values("i").domain, .integer)
        XCTAssertEqual(try values("i").index, [0])
        XCTAssertEqual(try values("i").a, .integer(Int128(1) << 62))
        XCTAssertEqual(try values("i").maxAbs, 1)
        let u = try values("u")
        XCTAssertEqual(u.a, .integer(Int128(UInt64.max)), "uint64 keeps its value against int64")
        XCTAssertEqual(u.b, .integer(-1))
        XCTAssertEqual(r.differences.first { $0.name == "u" }?.changes, [.dtype, .values])
        XCTAssertEqual(try values("b").index, [1])
        let c = try values("c")
        XCTAssertEqual(c.domain, .complex128)
        XCTAssertEqual(c.maxAbs, 3)
        XCTAssertEqual(c.index, [1])
        XCTAssertEqual(c.b, .complex(3, 7))
        let p = try values("p")
        XCTAssertEqual(p.domain, .bytes)
        XCTAssertEqual(p.index, [1])
        XCTAssertEqual(p.beyondTolerance, 1)
        XCTAssertNil(p.maxAbs)
        XCTAssertEqual(r.equal, 0)
    }

    func testDiffShapeDtypeAndMissing() throws {
        let a = Self.dict([Self.entry("s", .float32, [2, 3], Array(repeating: 1, count: 6)),
                           Self.entry("d", .float32, [2], [1, 2.5]),
                           Self.entry("e", .float32, [2], [1, 2.1]),
                           Self.entry("only_a", .float32, [1], [0])],
                          metadata: [MetadataEntry(name: "epoch", value: .int(5))])
        let b = Self.dict([Self.entry("s", .float32, [3, 2], Array(repeating: 1, count: 6)),
                           Self.entry("d", .float16, [2], [1, 2.5]),
                           Self.entry("e", .float16, [2], [1, 2.1]),
                           Self.entry("only_b", .int8, [4], [0, 0, 0, 0])],
                          metadata: [MetadataEntry(name: "epoch", value: .string("5"))])
        let r = try CheckpointDiff.compare(a, b)
        XCTAssertEqual(r.differences.map(\.name), ["s", "d", "e", "only_a", "only_b"], "first file's order, then the second's own")
        let s = r.differences[0]
        XCTAssertEqual(s.changes, [.shape])
        XCTAssertNil(s.values, "values of a changed shape are not compared")
        XCTAssertEqual(s.shapeA, [2, 3]); XCTAssertEqual(s.shapeB, [3, 2])
        XCTAssertEqual(r.differences[1].changes, [.dtype], "2.5 is exact in float16: only the dtype changed")
        XCTAssertEqual(r.differences[1].values?.withinTolerance, true)
        XCTAssertEqual(r.differences[2].changes, [.dtype, .values], "2.1 rounds in float16")
        XCTAssertEqual(r.differences[3].status, .onlyInA)
        XCTAssertEqual(r.differences[4].status, .onlyInB)
        XCTAssertEqual(r.differences[4].dtypeB, .int8)
        XCTAssertTrue(r.metadata.isEmpty, "5 from a pickle equals '5' in safetensors metadata")
    }

    func testDiffKeysAndUnreadableFiles() throws {
        // Subtrees on either side: the training checkpoint's state_dict against itself.
        let training = checkpointFixture("torch/training_zip.pth")
        let sd = try Checkpoint.open(training, key: "state_dict")
        let out = try write(sd.tensors, to: "sd.safetensors")
        XCTAssertTrue(try CheckpointDiff.compare(training, out, options: DiffOptions(keyA: "state_dict")).identical)
        XCTAssertTrue(try CheckpointDiff.compare(out, training, options: DiffOptions(keyB: "state_dict")).identical)
        XCTAssertThrowsError(try CheckpointDiff.compare(training, out, options: DiffOptions(keyA: "nope"))) {
            XCTAssertTrue(renderError($0).contains("no tensors under key 'nope'"), renderError($0))
        }
        XCTAssertThrowsError(try CheckpointDiff.compare(training, path("missing.pth"))) {
            XCTAssertTrue(renderError($0).contains("missing.pth"), renderError($0))
        }
    }

    /// Sharded checkpoints (an index or its folder) diff like single files.
    func testDiffOfShardedCheckpoints() throws {
        let shards = checkpointFixture("shards")
        for (sharded, single) in [("st", "original.pth"), ("bin/pytorch_model.bin.index.json", "original.safetensors"),
                                  ("legacy", "original.pth")] {
            let r = try CheckpointDiff.compare("\(shards)/\(sharded)", "\(shards)/\(single)")
            XCTAssertTrue(r.identical, "\(sharded): \(r.differences.map(\.name))")
            XCTAssertEqual(r.equal, 13, sharded)
        }
    }

    /// Distributed Checkpoints (2 and 4 FSDP ranks) diff equal to each other and to torch's own consolidation.
    func testDiffOfDistributedCheckpoints() throws {
        let dcp = checkpointFixture("dcp")
        for (a, b) in [("fsdp2", "fsdp2/ref.safetensors"), ("fsdp4", "fsdp4/ref.safetensors"), ("fsdp4", "fsdp2")] {
            let r = try CheckpointDiff.compare("\(dcp)/\(a)", "\(dcp)/\(b)")
            XCTAssertTrue(r.identical, "\(a) vs \(b): \(r.differences.map(\.name))")
            XCTAssertGreaterThan(r.equal, 10)
        }
    }

    // MARK: merge

    func testMergeOverridesInDictUpdateOrder() throws {
        let a = try write([Self.entry("x", .float32, [1], [1]), Self.entry("y", .float32, [2], [2, 2]), Self.entry("z", .int64, [1], [3])],
                          to: "a.safetensors", metadata: ["epoch": "1", "source_file": "old.pth", "arch": "r18"])
        let b = try write([Self.entry("w", .float32, [1], [40]), Self.entry("y", .float32, [2], [20, 20])],
                          to: "b.safetensors", metadata: ["epoch": "2"])
        let out = path("m.safetensors")
        let (prepared, result) = try Merger.merge([MergeInput(path: a), MergeInput(path: b)], to: out)
        XCTAssertEqual(prepared.overridden.map(\.name), ["y"])
        XCTAssertEqual(prepared.sources, [0, 1, 0, 1])
        XCTAssertGreaterThan(result.bytesWritten, 0)
        let m = try Checkpoint.open(out)
        XCTAssertEqual(m.names, ["x", "y", "z", "w"], "an overridden key keeps its first position, new keys append")
        XCTAssertEqual(try m["y"]?.load().floats(), [20, 20])
        XCTAssertEqual(try m["z"]?.load().dtype, .int64)
        // Provenance: merge_sources + merge_map recover each tensor's file; the inputs' metadata, later winning,
        // without an input's own provenance.
        let meta = Dictionary(m.metadata.map { ($0.name, $0.value.description) }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(meta["epoch"], "2")
        XCTAssertEqual(meta["arch"], "r18")
        XCTAssertNil(meta["source_file"])
        XCTAssertEqual(meta["merge_map"], "[[1,1],[0,1],[1,1],[0,1]]", "sorted names w, x, y, z")
        XCTAssertEqual(try Merger.sources(metadata: meta, names: m.names),
                       ["x": "a.safetensors", "y": "b.safetensors", "z": "a.safetensors", "w": "b.safetensors"])
        XCTAssertThrowsError(try Merger.sources(metadata: meta, names: m.names + ["extra"])) {
            guard case MergeError.badProvenance = $0 else { return XCTFail("\($0)") }
        }
        // The merged file against its inputs: diff sees exactly the override.
        let d = try CheckpointDiff.compare(a, out)
        XCTAssertEqual(d.differences.map(\.name), ["y", "w"])

        // --no-override: an overlap is an error naming the key and both files; nothing is written.
        let refused = path("refused.safetensors")
        XCTAssertThrowsError(try Merger.merge([MergeInput(path: a), MergeInput(path: b)], to: refused,
                                              options: MergeOptions(override: false))) {
            XCTAssertEqual($0 as? MergeError, .overlap(key: "y", first: a, second: b))
            XCTAssertTrue(renderError($0).contains("'y' is in both"), renderError($0))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: refused))
        // Never over an input, never over an existing file without overwrite.
        XCTAssertThrowsError(try Merger.merge([MergeInput(path: a), MergeInput(path: b)], to: b)) {
            guard case ConversionError.outputIsInput = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try Merger.merge([MergeInput(path: a), MergeInput(path: b)], to: out)) {
            XCTAssertTrue(renderError($0).contains("already exists"), renderError($0))
        }
        XCTAssertThrowsError(try Merger.prepare([MergeInput(path: a)])) { XCTAssertEqual($0 as? MergeError, .needsTwoInputs) }
        // A state dict holding a name twice is refused by both, naming it.
        let twice = Self.dict([Self.entry("x", .float32, [1], [1]), Self.entry("x", .float32, [1], [2])], file: "twice")
        XCTAssertThrowsError(try CheckpointDiff.compare(twice, Self.dict([]))) {
            XCTAssertEqual($0 as? CheckpointError, CheckpointError("duplicate tensor name", file: "twice", key: "x"))
        }
    }

    func testMergeKeysCastAndHDF5() throws {
        let training = checkpointFixture("torch/training_zip.pth")
        let extra = try write([Self.entry("head.weight", .float32, [2], [1, 2]), Self.entry("steps", .int64, [1], [7])], to: "extra.safetensors")
        let spec = MergeInput.parse("\(training):state_dict")
        XCTAssertEqual(spec, MergeInput(path: training, key: "state_dict"))
        XCTAssertEqual(MergeInput.parse(extra), MergeInput(path: extra))
        let out = path("m.h5")
        var options = MergeOptions()
        options.output.format = .h5
        options.output.dtype = .float16
        try Merger.merge([spec, MergeInput(path: extra)], to: out, options: options)
        let m = try Checkpoint.open(out)
        let base = try Checkpoint.open(training, key: "state_dict")
        XCTAssertEqual(Set(m.names), Set(base.names + ["head.weight", "steps"]))
        XCTAssertEqual(m["head.weight"]?.dtype, .float16)
        XCTAssertEqual(m["steps"]?.dtype, .int64, "integers are never cast")
        let meta = Dictionary(m.metadata.map { ($0.name, $0.value.description) }, uniquingKeysWith: { a, _ in a })
        XCTAssertTrue(meta["merge_sources"]?.contains("\"key\":\"state_dict\"") == true, meta["merge_sources"] ?? "nil")
        let sources = try Merger.sources(metadata: meta, names: m.names)
        XCTAssertEqual(sources["head.weight"], "extra.safetensors")
        XCTAssertEqual(Set(base.names.map { sources[$0] }), ["training_zip.pth"])
        // Values within float16 rounding of the originals.
        let d = try CheckpointDiff.compare(training, out, options: DiffOptions(atol: 1e-3, rtol: 1e-3, keyA: "state_dict"))
        XCTAssertEqual(d.count(.onlyInB), 2)
        XCTAssertEqual(d.count(.different), d.differences.filter { $0.changes == [.dtype] }.count, "only dtypes changed")
    }

    /// A sharded input merges like a file; the output may not be one of its shards.
    func testMergeWithAShardedInput() throws {
        let dir = tmp.appendingPathComponent("st").path
        try FileManager.default.copyItem(atPath: checkpointFixture("shards/st"), toPath: dir)
        let extra = try write([Self.entry("embed.weight", .float32, [1], [9]), Self.entry("extra.bias", .float32, [1], [1])], to: "extra.safetensors")
        let out = path("m.safetensors")
        let (prepared, _) = try Merger.merge([MergeInput(path: dir), MergeInput(path: extra)], to: out)
        XCTAssertEqual(prepared.overridden.map(\.name), ["embed.weight"])
        let m = try Checkpoint.open(out)
        XCTAssertEqual(m.tensors.count, 14)
        XCTAssertEqual(m.names.first, "embed.weight", "the overridden tensor keeps the index's first position")
        XCTAssertEqual(try m["embed.weight"]?.load().floats(), [9])
        let d = try CheckpointDiff.compare(checkpointFixture("shards/original.safetensors"), out)
        XCTAssertEqual(d.differences.map(\.name), ["embed.weight", "extra.bias"])
        // Writing over a shard of the input is refused, even with overwrite.
        let shard = "\(dir)/model-00002-of-00004.safetensors"
        let before = try Data(contentsOf: URL(fileURLWithPath: shard))
        var options = MergeOptions()
        options.output.overwrite = true
        XCTAssertThrowsError(try Merger.merge([MergeInput(path: dir), MergeInput(path: extra)], to: shard, options: options)) {
            guard case ConversionError.outputIsInput(let input) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(input.hasSuffix("model-00002-of-00004.safetensors"), input)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: shard)), before)
    }

    /// A Distributed Checkpoint's model (`DIR:model`) merged with a file: chunked tensors written chunk by chunk.
    func testMergeWithADistributedCheckpoint() throws {
        let dcp = checkpointFixture("dcp/fsdp4")
        let ref = try Checkpoint.open("\(dcp)/ref.safetensors", key: "model")
        let first = try XCTUnwrap(ref.tensors.first)
        let extra = try write([TensorEntry(name: "head.weight", tensor: Tensor(shape: [2], floats: [1, 2]))], to: "head.safetensors")
        let out = path("m.safetensors")
        let input = MergeInput.parse("\(dcp):model")
        XCTAssertEqual(input.key, "model")
        let (prepared, _) = try Merger.merge([input, MergeInput(path: extra)], to: out)
        XCTAssertTrue(prepared.conversion.stateDict.tensors.contains { $0.chunks != nil }, "chunked entries reach the writer as chunks")
        let d = try CheckpointDiff.compare("\(dcp)/ref.safetensors", out, options: DiffOptions(keyA: "model"))
        XCTAssertEqual(d.differences.map(\.name), ["head.weight"])
        XCTAssertEqual(d.differences.first?.status, .onlyInB)
        XCTAssertEqual(d.equal, ref.tensors.count)
        XCTAssertEqual(try Checkpoint.open(out)[first.name]?.load().bytes, try first.load().bytes)
    }

    /// The CBAM seed's merge as a file: torchvision ResNet keys + the attention weights → one file that loads onto
    /// the CBAM model under strict and gives PyTorch's output.
    func testMergedCBAMFileLoadsStrictly() throws {
        let out = path("cbam.safetensors")
        let (prepared, _) = try Merger.merge([MergeInput(path: fixture("resnet18_cbam_tiny.backbone.pth")),
                                              MergeInput(path: fixture("resnet18_cbam_tiny.attention.safetensors"))], to: out)
        XCTAssertTrue(prepared.overridden.isEmpty)
        var model = try ModelRegistry.make(name: "resnet18_cbam_tiny")
        let report = try model.load([out], options: LoadOptions(policy: .strict))
        XCTAssertEqual(report.applied.count, model.parameterKeys.count)
        let result = try Verifier.verify(model, reference: try ReferenceSet.load(modelFixture("resnet18_cbam_tiny.reference.safetensors")))
        XCTAssertTrue(result.passed)
        // Override: the backbone again over the merged file changes nothing but the sources of its tensors.
        let again = path("again.safetensors")
        let (p2, _) = try Merger.merge([MergeInput(path: out), MergeInput(path: fixture("resnet18_cbam_tiny.backbone.pth"))], to: again)
        XCTAssertEqual(p2.overridden.count, 122)
        XCTAssertTrue(try CheckpointDiff.compare(out, again).identical)
        XCTAssertEqual(try Checkpoint.open(again).names, try Checkpoint.open(out).names)
    }
}
