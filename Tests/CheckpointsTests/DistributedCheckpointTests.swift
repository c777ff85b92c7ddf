@testable import Checkpoints
import Foundation
import TensorCore
import XCTest

/// PyTorch Distributed Checkpoints written by torch 2.15 itself (Tools/make_dcp_fixtures.py): every tensor must
/// equal, bit for bit, what `dcp_to_torch_save` + `torch.load` gives (Fixtures/dcp/*/ref.safetensors).
final class DistributedCheckpointTests: TemporaryDirectoryTestCase {
    static let cases = [("fsdp2", "fsdp2"), ("fsdp4", "fsdp4"), ("mesh2d", "mesh2d"),
                        // Same seeds and world size as fsdp2, saved with SerializationFormat.SAFETENSORS.
                        ("st2", "fsdp2")]

    func assertSameTensors(_ sd: StateDict, _ ref: StateDict, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(Set(sd.names), Set(ref.names), label, file: file, line: line)
        XCTAssertEqual(sd.names.count, ref.names.count, label, file: file, line: line)
        for r in ref.tensors {
            guard let t = sd[r.name] else { continue }
            XCTAssertEqual(t.dtype, r.dtype, "\(label) \(r.name)", file: file, line: line)
            XCTAssertEqual(t.shape, r.shape, "\(label) \(r.name)", file: file, line: line)
            XCTAssertEqual(try t.load().bytes, try r.load().bytes, "\(label) \(r.name)", file: file, line: line)
        }
    }

    func testFixturesEqualTorchReference() throws {
        for (name, refName) in Self.cases {
            let sd = try Checkpoint.open(Fixtures.path("dcp/" + name))
            XCTAssertEqual(sd.format, .dcp)
            let ref = try Checkpoint.open(Fixtures.path("dcp/\(refName)/ref.safetensors"))
            try assertSameTensors(sd, ref, name)
            // Tensors really were chunked (4 ranks: layer1.weight's 7 rows in 2+2+2+1).
            if name == "fsdp4" {
                XCTAssertEqual(sd["model.layer1.weight"]?.chunks?.map(\.sizes), [[2, 5], [2, 5], [2, 5], [1, 5]])
            }
            if name == "mesh2d" {
                XCTAssertEqual(sd["box"]?.chunks?.count, 4)
                XCTAssertEqual(sd["box"]?.chunks?.first?.sizes, [4, 3])
            }
        }
    }

    func testMetadataFileItselfOpensTheCheckpoint() throws {
        let sd = try Checkpoint.open(Fixtures.path("dcp/fsdp2/.metadata"))
        XCTAssertEqual(sd.tensors.count, 17)
    }

    func testBytesItemsBecomeMetadata() throws {
        let sd = try Checkpoint.open(Fixtures.path("dcp/fsdp4"))
        func value(_ n: String) -> MetaValue? { sd.metadata.first { $0.name == n }?.value }
        XCTAssertEqual(value("step"), .int(42))
        XCTAssertEqual(value("hparams.name"), .string("tiny"))
        XCTAssertEqual(value("hparams.lr"), .float(0.01))
        XCTAssertEqual(value("hparams.betas.1"), .float(0.95))
        XCTAssertEqual(value("optim.param_groups.0.params.2"), .string("layer2.weight"))
        XCTAssertEqual(value("optim.param_groups.0.amsgrad"), .bool(false))
        XCTAssertEqual(value("blob"), .bytes([0x00, 0x01] + Array("binary".utf8) + [0xFF]))
        let mesh = try Checkpoint.open(Fixtures.path("dcp/mesh2d"))
        XCTAssertEqual(mesh.metadata.first { $0.name == "epoch" }?.value, .int(3))
    }

    func testKeyModelSelectsTheModel() throws {
        let sd = try Checkpoint.open(Fixtures.path("dcp/fsdp2"), key: "model")
        XCTAssertEqual(sd.names, ["scale", "layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias"])
        let ref = try Checkpoint.open(Fixtures.path("dcp/fsdp2/ref.safetensors"), key: "model")
        try assertSameTensors(sd, ref, "model")
    }

    func testConvertToSafetensorsEqualsReference() throws {
        for (name, refName) in Self.cases {
            let sd = try Checkpoint.open(Fixtures.path("dcp/" + name))
            let out = try AtomicOutput(destination: path(name + ".safetensors"))
            try SafetensorsWriter.write(sd, to: out, dtype: nil, metadata: [:])
            try out.commit()
            let back = try Checkpoint.open(path(name + ".safetensors"))
            XCTAssertEqual(back.names, sd.names, "tensors keep the checkpoint's order")
            try assertSameTensors(back, try Checkpoint.open(Fixtures.path("dcp/\(refName)/ref.safetensors")), name)
        }
    }

    // MARK: hostile checkpoints, crafted here

    /// A copy of the fsdp2 fixture whose `.metadata` is rewritten by `edit` (on the parsed metadata).
    func crafted(_ edit: (inout CraftedMetadata) -> Void) throws -> String {
        let dir = path("ckpt-\(UUID().uuidString.prefix(8))")
        try FileManager.default.copyItem(atPath: Fixtures.path("dcp/fsdp2"), toPath: dir)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/.metadata")))
        var md = CraftedMetadata(try DCPMetadata.parse(bytes, file: ".metadata"))
        edit(&md)
        try Data(md.pickle()).write(to: URL(fileURLWithPath: dir + "/.metadata"))
        return dir
    }

    func openAndLoad(_ dir: String) throws {
        let sd = try Checkpoint.open(dir)
        for t in sd.tensors { _ = try t.load() }
    }

    func testUntouchedCraftedCopyReads() throws {
        // The crafted metadata writer itself round-trips: with no edit, the copy reads like the original.
        let dir = try crafted { _ in }
        try assertSameTensors(try Checkpoint.open(dir), try Checkpoint.open(Fixtures.path("dcp/fsdp2/ref.safetensors")), "copy")
    }

    func testHostileCheckpointsFailWithOneClearError() throws {
        let w = "model.layer1.weight"
        let rows: [(String, (inout CraftedMetadata) -> Void, [String])] = [
            ("gap", { $0.removeChunk(w, at: [4, 0]) }, ["chunks cover 20 of the tensor's 35 elements", "a gap", w]),
            ("overlap", { $0.moveChunk(w, from: [4, 0], to: [3, 0]) }, ["chunks overlap", "__0_0.distcp", "__1_0.distcp", w]),
            ("out of bounds", { $0.setSize(w, [6, 5]) }, ["lies outside the tensor's shape [6, 5]", "__1_0.distcp", w]),
            ("dtype disagrees", { $0.setDType(w, "float64") }, ["chunk holds float32 [4, 5] but .metadata declares float64 [4, 5]", "__0_0.distcp", w]),
            ("shape disagrees", { $0.resizeChunks(w, [[0, 0]: [4, 4], [4, 0]: [3, 4]], size: [7, 4]) },
             ["chunk holds float32 [4, 5] but .metadata declares float32 [4, 4]", w]),
            ("relative path escapes", { $0.setPath(w, at: [4, 0], "../__1_0.distcp") }, ["relative_path '../__1_0.distcp' leaves the checkpoint directory", w]),
            ("absolute path", { $0.setPath(w, at: [4, 0], "/etc/passwd") }, ["relative_path '/etc/passwd'", w]),
            ("past the end", { $0.setOffset(w, at: [4, 0], 1 << 20) }, ["runs past the end of the file", "__1_0.distcp", w]),
            ("length overflow", { $0.setOffset(w, at: [4, 0], Int.max - 3) }, ["runs past the end of the file", w]),
            ("payload is not a zip", { $0.setOffset(w, at: [4, 0], 3) }, ["neither a torch.save archive nor safetensors", "__1_0.distcp", w]),
            ("huge size", { $0.setSize(w, [1 << 40, 1 << 40]) }, ["overflows", w]),
            ("huge chunk", { $0.removeChunk(w, at: [4, 0]); $0.resizeChunks(w, [[0, 0]: [1 << 40, 5]], size: [1 << 40, 5]) },
             ["but .metadata declares float32 [1099511627776, 5]", w]),
            ("missing storage", { $0.dropStorage(w, at: [4, 0]) }, ["chunk at offsets [4, 0] has no storage entry", w]),
            ("transforms", { $0.setTransforms(w, at: [4, 0], ["zstd"]) }, ["stream transforms [zstd]", w]),
            ("foreign global", { $0.foreignGlobal = ("os", "system") }, ["refusing .metadata", "os.system"]),
            ("foreign class as entry", { $0.foreignGlobal = ("torch.distributed.checkpoint.metadata", "Evil") },
             ["torch.distributed.checkpoint.metadata.Evil"]),
            ("version", { $0.version = "9.0.0" }, ["DCP metadata version 9.0.0 is not supported"]),
        ]
        for (label, edit, fragments) in rows {
            let dir = try crafted(edit)
            guard let e = checkpointError({ try openAndLoad(dir) }) else { XCTFail(label); continue }
            let line = e.description
            XCTAssertFalse(line.contains("\n"), label)
            for f in fragments { XCTAssertTrue(line.contains(f), "\(label): '\(f)' not in: \(line)") }
        }
    }

    func testPayloadsReadTwiceAreRefused() throws {
        // Bytes items pointing at a chunk's payload: each would be unpickled (or kept) again, so a small .metadata
        // could multiply one big payload; payloads must fit in the files together.
        let w = "model.layer1.weight"
        let dir = try crafted { md in
            guard let s = md.storage.first(where: { $0.name == w && $0.offsets == [4, 0] }) else { return }
            for i in 0..<3 {
                md.items.append(CraftedMetadata.Item(name: "extra.\(i)", bytes: true))
                md.storage.append(CraftedMetadata.Storage(name: "extra.\(i)", offsets: nil, path: s.path, offset: s.offset, length: s.length))
            }
        }
        let e = checkpointError { try openAndLoad(dir) }
        let line = e?.description ?? ""
        for f in ["payloads overlap", "__1_0.distcp", "extra.0"] { XCTAssertTrue(line.contains(f), "'\(f)' not in: \(line)") }
        XCTAssertFalse(line.contains("\n"))
    }

    func testChunkComparisonBudgetIsSharedByTheTensors() throws {
        // Five 1x1 chunks in one row: every pair shares the first dimension (10 comparisons per tensor).
        let row = (0..<5).map { (offsets: [0, $0], sizes: [1, 1]) }
        var budget = 15
        XCTAssertNoThrow(try ChunkLayout.check(shape: [1, 5], chunks: row, comparisons: &budget, where: { "file\($0)" }))
        XCTAssertEqual(budget, 5)
        XCTAssertThrowsError(try ChunkLayout.check(shape: [1, 5], chunks: row, comparisons: &budget, where: { "file\($0)" })) { e in
            XCTAssertTrue("\(e)".contains("overlap comparisons in all"), "\(e)")
        }
    }

    func testTensorOfAnUnsupportedDTypeIsListedNotFatal() throws {
        let dir = try crafted { $0.setDType("model.layer1.weight", "complex32") }
        let sd = try Checkpoint.open(dir)
        XCTAssertEqual(sd.unsupported, [UnsupportedTensor(name: "model.layer1.weight", what: "a torch.complex32 tensor")])
        XCTAssertNil(sd["model.layer1.weight"])
        XCTAssertEqual(sd.tensors.count, 16)
    }

    func testDataFileLinkedOutsideTheDirectoryIsRefused() throws {
        let dir = try crafted { _ in }
        let outside = path("outside.distcp")
        try FileManager.default.moveItem(atPath: dir + "/__1_0.distcp", toPath: outside)
        try FileManager.default.createSymbolicLink(atPath: dir + "/__1_0.distcp", withDestinationPath: outside)
        let e = checkpointError { try openAndLoad(dir) }
        XCTAssertTrue(e?.description.contains("resolves (through a symbolic link)") ?? false, e?.description ?? "")
        // A link that stays inside the directory is fine.
        try FileManager.default.removeItem(atPath: dir + "/__1_0.distcp")
        try FileManager.default.moveItem(atPath: outside, toPath: dir + "/real_1.distcp")
        try FileManager.default.createSymbolicLink(atPath: dir + "/__1_0.distcp", withDestinationPath: "real_1.distcp")
        XCTAssertNoThrow(try openAndLoad(dir))
    }

    // MARK: writing

    func testWrittenCheckpointReadsBackEqual() throws {
        for (name, ranks) in [("fsdp4", 3), ("mesh2d", 4), ("fsdp2", 1)] {
            let sd = try Checkpoint.open(Fixtures.path("dcp/" + name))
            let out = path("\(name)-\(ranks).dcp")
            try DistributedCheckpointWriter.write(sd, to: out, ranks: ranks, dtype: nil)
            let back = try Checkpoint.open(out)
            XCTAssertEqual(back.format, .dcp)
            XCTAssertEqual(back.names, sd.names, name)
            try assertSameTensors(back, sd, name)
            XCTAssertEqual(back.metadata, sd.metadata, name)
            let files = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasSuffix(".distcp") }.sorted()
            XCTAssertEqual(files, (0..<ranks).map { "__\($0)_0.distcp" }, name)
            if name == "fsdp4" {   // 7 rows over 3 ranks as Shard(0) cuts them: 3 + 3 + 1
                XCTAssertEqual(back["model.layer1.weight"]?.chunks?.map(\.sizes), [[3, 5], [3, 5], [1, 5]])
            }
        }
    }

    func testWriterCastsAndRefusesWhatItCannotWrite() throws {
        let sd = try Checkpoint.open(Fixtures.path("dcp/mesh2d"))
        try DistributedCheckpointWriter.write(sd, to: path("half.dcp"), ranks: 2, dtype: .float16)
        let back = try Checkpoint.open(path("half.dcp"))
        XCTAssertEqual(back["box"]?.dtype, .float16)
        XCTAssertEqual(back["rep"]?.dtype, .int64)
        XCTAssertEqual(try back["box"]?.load().bytes, try sd["box"]?.load().converted(to: .float16).bytes)
        // An existing destination, a bad rank count, a dtype torch.save's classic storages lack: one error each,
        // and no temporary directory left behind.
        XCTAssertNotNil(checkpointError { try DistributedCheckpointWriter.write(sd, to: self.path("half.dcp"), ranks: 2, dtype: nil) })
        XCTAssertNotNil(checkpointError { try DistributedCheckpointWriter.write(sd, to: self.path("zero.dcp"), ranks: 0, dtype: nil) })
        let u16 = StateDict(format: .safetensors, file: "x", tensors: [TensorEntry(name: "u", tensor: Tensor(dtype: .uint16, shape: [2], bytes: [1, 0, 2, 0]))])
        let e = checkpointError { try DistributedCheckpointWriter.write(u16, to: self.path("u16.dcp"), ranks: 2, dtype: nil) }
        XCTAssertTrue(e?.description.contains("uint16") ?? false, e?.description ?? "")
        let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.contains("partial") }
        XCTAssertEqual(left, [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("u16.dcp")))
    }

    func testChunkLayoutCheck() throws {
        func check(_ shape: [Int], _ chunks: [([Int], [Int])]) throws {
            try ChunkLayout.check(shape: shape, chunks: chunks.map { (offsets: $0.0, sizes: $0.1) }, where: { "file\($0)" })
        }
        XCTAssertNoThrow(try check([7, 5], [([0, 0], [4, 3]), ([0, 3], [4, 2]), ([4, 0], [3, 3]), ([4, 3], [3, 2])]))
        XCTAssertNoThrow(try check([], [([], [])]))
        XCTAssertNoThrow(try check([3], [([0], [3]), ([3], [0])]))    // an empty chunk past the end is fine
        XCTAssertThrowsError(try check([], [([], []), ([], [])]))      // a scalar stored twice
        XCTAssertThrowsError(try check([7, 5], [([0, 0], [7, 3]), ([0, 2], [7, 3])]))
        XCTAssertThrowsError(try check([7, 5], [([0, 0], [7, 3])]))
        XCTAssertThrowsError(try check([7, 5], [([0, 0], [7])]))
        XCTAssertThrowsError(try check([7, 5], [([-1, 0], [7, 5])]))
    }

    func testChunkRunsPlaceBoxes() {
        // A [1, 2]-offset 2x2 box in a 3x4 tensor: two runs of 2 elements at rows 1 and 2.
        var runs: [[Int]] = []
        ChunkPlacement.runs(shape: [3, 4], offsets: [1, 2], sizes: [2, 2], elementSize: 4) { runs.append([$0, $1, $2]) }
        XCTAssertEqual(runs, [[24, 0, 8], [40, 8, 8]])
        XCTAssertTrue(ChunkPlacement.isContiguous(shape: [3, 4], sizes: [2, 4]))
        XCTAssertTrue(ChunkPlacement.isContiguous(shape: [3, 4, 5], sizes: [1, 2, 5]))
        XCTAssertFalse(ChunkPlacement.isContiguous(shape: [3, 4], sizes: [2, 2]))
    }
}

/// A DCP `.metadata` rebuilt from parsed metadata, with edits, pickled the way torch does (classes by NEWOBJ +
/// BUILD, torch.Size by REDUCE, dtypes as globals), with the library's PickleEmitter.
struct CraftedMetadata {
    struct Item {
        var name: String
        var bytes: Bool
        var dtype = "float32"
        var size: [Int] = []
        var chunks: [(offsets: [Int], sizes: [Int])] = []
    }
    struct Storage {
        var name: String
        var offsets: [Int]?
        var path: String
        var offset: Int
        var length: Int
        var transforms: [String]?
    }
    var items: [Item] = []
    var storage: [Storage] = []
    var version: String? = "1.0.0"
    var foreignGlobal: (String, String)?

    init(_ md: DCPMetadata) {
        for (name, item) in md.items {
            switch item {
            case .bytes: items.append(Item(name: name, bytes: true))
            case .unsupported: break
            case .tensor(let dtype, let size, let chunks):
                let torchName = TorchGlobals.torchDTypes.first { $0.value == dtype }.map(\.key) ?? "float32"
                items.append(Item(name: name, bytes: false, dtype: dtype == .float32 ? "float32" : torchName, size: size, chunks: chunks))
            }
        }
        let sorted = md.storage.sorted { a, b in
            a.key.name != b.key.name ? a.key.name < b.key.name : (a.key.offsets ?? []).lexicographicallyPrecedes(b.key.offsets ?? [])
        }
        for (k, v) in sorted {
            storage.append(Storage(name: k.name, offsets: k.offsets, path: v.relativePath, offset: v.offset, length: v.length))
        }
    }

    mutating func edit(_ name: String, _ f: (inout Item) -> Void) {
        if let i = items.firstIndex(where: { $0.name == name }) { f(&items[i]) }
    }
    mutating func editStorage(_ name: String, at offsets: [Int], _ f: (inout Storage) -> Void) {
        if let i = storage.firstIndex(where: { $0.name == name && $0.offsets == offsets }) { f(&storage[i]) }
    }
    mutating func removeChunk(_ name: String, at offsets: [Int]) {
        edit(name) { $0.chunks.removeAll { $0.offsets == offsets } }
    }
    mutating func moveChunk(_ name: String, from: [Int], to: [Int]) {
        edit(name) { item in
            if let i = item.chunks.firstIndex(where: { $0.offsets == from }) { item.chunks[i].offsets = to }
        }
        editStorage(name, at: from) { $0.offsets = to }
    }
    mutating func setSize(_ name: String, _ size: [Int]) { edit(name) { $0.size = size } }
    mutating func setDType(_ name: String, _ dtype: String) { edit(name) { $0.dtype = dtype } }
    mutating func resizeChunks(_ name: String, _ sizes: [[Int]: [Int]], size: [Int]) {
        edit(name) { item in
            item.size = size
            for i in item.chunks.indices { if let s = sizes[item.chunks[i].offsets] { item.chunks[i].sizes = s } }
        }
    }
    mutating func setPath(_ name: String, at offsets: [Int], _ path: String) { editStorage(name, at: offsets) { $0.path = path } }
    mutating func setOffset(_ name: String, at offsets: [Int], _ offset: Int) { editStorage(name, at: offsets) { $0.offset = offset } }
    mutating func setTransforms(_ name: String, at offsets: [Int], _ t: [String]) { editStorage(name, at: offsets) { $0.transforms = t } }
    mutating func dropStorage(_ name: String, at offsets: [Int]) { storage.removeAll { $0.name == name && $0.offsets == offsets } }

    // MARK: pickling (protocol 2)

    func pickle() -> [UInt8] {
        var p = PickleEmitter()
        p.raw([0x80, 2])
        p.object("torch.distributed.checkpoint.metadata", "Metadata") { p in
            p.dict { p in
                p.string("state_dict_metadata")
                p.dict { p in
                    for item in items {
                        p.string(item.name)
                        if item.bytes {
                            p.object("torch.distributed.checkpoint.metadata", "BytesStorageMetadata")
                            continue
                        }
                        p.object("torch.distributed.checkpoint.metadata", "TensorStorageMetadata") { p in
                            p.dict { p in
                                p.string("properties")
                                p.object("torch.distributed.checkpoint.metadata", "TensorProperties") { p in
                                    p.tuple { p in p.global("torch", item.dtype); p.raw([0x4E]) }
                                }
                                p.string("size"); p.size(item.size)
                                p.string("chunks")
                                p.list { p in
                                    for c in item.chunks {
                                        p.object("torch.distributed.checkpoint.metadata", "ChunkStorageMetadata") { p in
                                            p.dict { p in p.string("offsets"); p.size(c.offsets); p.string("sizes"); p.size(c.sizes) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                p.string("storage_data")
                p.dict { p in
                    for s in storage {
                        p.object("torch.distributed.checkpoint.metadata", "MetadataIndex") { p in
                            p.dict { p in
                                p.string("fqn"); p.string(s.name)
                                p.string("offset"); if let o = s.offsets { p.size(o) } else { p.raw([0x4E]) }
                                p.string("index"); p.raw([0x4E])
                            }
                        }
                        p.object("torch.distributed.checkpoint.filesystem", "_StorageInfo") { p in
                            p.dict { p in
                                p.string("relative_path"); p.string(s.path)
                                p.string("offset"); p.int(s.offset)
                                p.string("length"); p.int(s.length)
                                if let t = s.transforms { p.string("transform_descriptors"); p.list { p in for x in t { p.string(x) } } }
                            }
                        }
                    }
                }
                if let v = version { p.string("version"); p.string(v) }
                if let (m, n) = foreignGlobal {
                    p.string("planner_data")
                    p.call(m, n) { p in p.string("echo hi") }
                }
            }
        }
        p.raw([0x2E])
        return p.bytes
    }
}
