@testable import Checkpoints
import Foundation
import TensorCore
import XCTest

/// Hugging Face sharded checkpoints (Fixtures/shards, written by huggingface_hub: Tools/make_shard_fixtures.py)
/// read as one, and every disagreement between an index and its shards refused in one line naming both.
final class ShardedCheckpointTests: TemporaryDirectoryTestCase {
    static let kinds: [(dir: String, index: String, format: CheckpointFormat)] = [
        ("st", "model.safetensors.index.json", .safetensors),
        ("bin", "pytorch_model.bin.index.json", .pytorchZip),
        ("legacy", "pytorch_model.bin.index.json", .pytorchLegacy),
    ]

    func testShardsReadAsTheOriginal() throws {
        let original = try Checkpoint.open(Fixtures.path("shards/original.safetensors"))
        for kind in Self.kinds {
            for given in [Fixtures.path("shards/\(kind.dir)"), Fixtures.path("shards/\(kind.dir)/\(kind.index)")] {
                let sd = try Checkpoint.open(given)
                XCTAssertEqual(sd.format, kind.format, given)
                XCTAssertEqual(sd.file, Fixtures.path("shards/\(kind.dir)/\(kind.index)"))
                XCTAssertEqual(sd.shards.map { ($0 as NSString).lastPathComponent },
                               (1...4).map { String(format: kind.dir == "st" ? "model-%05d-of-00004.safetensors" : "pytorch_model-%05d-of-00004.bin", $0) })
                XCTAssertEqual(Set(sd.names), Set(original.names), given)
                XCTAssertEqual(sd.tensors.count, original.tensors.count)
                for t in original.tensors {
                    let s = try XCTUnwrap(sd[t.name])
                    XCTAssertEqual(s.dtype, t.dtype, t.name)
                    XCTAssertEqual(s.shape, t.shape, t.name)
                    XCTAssertEqual(try s.load().bytes, try t.load().bytes, "\(given): \(t.name)")
                }
                // Shard order, then each shard's own order: the oversize tensor has shard 2 of its own.
                XCTAssertEqual(sd.tensors.firstIndex { $0.name == "blocks.0.mlp.fc1.weight" }, 3)
                XCTAssertTrue(sd[ "embed.weight"]?.location.hasPrefix(kind.dir == "st" ? "model-00001-of-00004.safetensors, " : "pytorch_model-00001-of-00004.bin, ") ?? false)
            }
        }
        // Zero-copy spans survive (safetensors and stored zip members lie verbatim in their shard).
        XCTAssertNotNil(try Checkpoint.open(Fixtures.path("shards/st"))["head.weight"]?.span)
        XCTAssertNotNil(try Checkpoint.open(Fixtures.path("shards/bin"))["head.weight"]?.span)
        // The safetensors shards' {"format": "pt"} is carried once.
        XCTAssertEqual(try Checkpoint.open(Fixtures.path("shards/st")).metadata, [MetadataEntry(name: "format", value: .string("pt"))])
    }

    /// A copy of the safetensors fixture set in the temporary folder, with its index replaced by `index` (a
    /// transformation of the original JSON text) when given.
    func copySet(_ kind: String = "st", to name: String = "set", index: ((String) -> String)? = nil) throws -> String {
        let dir = path(name)
        try FileManager.default.copyItem(atPath: Fixtures.path("shards/\(kind)"), toPath: dir)
        if let index {
            let p = dir + "/" + (kind == "st" ? "model.safetensors.index.json" : "pytorch_model.bin.index.json")
            let text = try String(contentsOfFile: p, encoding: .utf8)
            try? FileManager.default.removeItem(atPath: p)
            try index(text).write(toFile: p, atomically: false, encoding: .utf8)
        }
        return dir
    }

    func error(_ path: String) -> CheckpointError? {
        checkpointError { _ = try Checkpoint.open(path) }
    }

    func testDirectoryDispatch() throws {
        let empty = path("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        XCTAssertTrue(error(empty)?.description.contains("is a directory holding no checkpoint index") ?? false)
        let two = try copySet()
        try FileManager.default.copyItem(atPath: two + "/model.safetensors.index.json", toPath: two + "/other.index.json")
        let e = error(two)
        XCTAssertTrue(e?.description.contains("directory holds 2 checkpoint indexes ('model.safetensors.index.json', 'other.index.json')") ?? false, "\(String(describing: e))")
        // The index file itself is still read.
        XCTAssertEqual(try Checkpoint.open(two + "/other.index.json").tensors.count, 13)
    }

    /// (crafted set, fragment of the one error line). Every line must also name the index; `shard` the shard.
    func testDisagreementsAreRefused() throws {
        let s1 = "model-00001-of-00004.safetensors", s4 = "model-00004-of-00004.safetensors"
        func replacing(_ a: String, _ b: String) -> (String) -> String { { $0.replacingOccurrences(of: a, with: b) } }
        var cases: [(name: String, shard: String?, fragment: String, make: () throws -> String)] = []
        cases.append(("missing", "model-00009-of-00009.safetensors", "shard file is missing", {
            try self.copySet(to: "missing", index: replacing("\"head.bias\": \"\(s4)\"", "\"head.bias\": \"model-00009-of-00009.safetensors\""))
        }))
        cases.append(("unreadable", s1, "unrecognised format", {
            let d = try self.copySet(to: "unreadable")
            try Data(repeating: 7, count: 64).write(to: URL(fileURLWithPath: d + "/" + s1))
            return d
        }))
        cases.append(("truncated", s4, "runs past the end of the file", {
            let d = try self.copySet(to: "truncated")
            let p = d + "/" + s4
            try Data(try Data(contentsOf: URL(fileURLWithPath: p)).prefix(100)).write(to: URL(fileURLWithPath: p))
            return d
        }))
        cases.append(("absent", s1, "listed in the index but absent from its shard", {
            try self.copySet(to: "absent", index: replacing("\"weight_map\": {", "\"weight_map\": {\n    \"ghost.weight\": \"\(s1)\","))
        }))
        cases.append(("unlisted", s1, "in the shard but not in the index", {
            try self.copySet(to: "unlisted", index: replacing("    \"blocks.0.norm.bias\": \"\(s1)\",\n", ""))
        }))
        cases.append(("two shards", "dup.safetensors", "the index lists it under shard '\(s4)'", {
            let d = try self.copySet(to: "two", index: replacing("\"weight_map\": {", "\"weight_map\": {\n    \"x\": \"dup.safetensors\","))
            try FileManager.default.copyItem(atPath: d + "/" + s4, toPath: d + "/dup.safetensors")
            return d
        }))
        cases.append(("dotdot", nil, "has a '..' component", {
            try self.copySet(to: "dotdot", index: replacing("\"head.bias\": \"\(s4)\"", "\"head.bias\": \"../set/\(s4)\""))
        }))
        cases.append(("absolute", nil, "is an absolute path", {
            try self.copySet(to: "absolute", index: replacing("\"head.bias\": \"\(s4)\"", "\"head.bias\": \"/etc/passwd\""))
        }))
        cases.append(("nul", nil, "contains a NUL byte", {
            try self.copySet(to: "nul", index: replacing("\"head.bias\": \"\(s4)\"", "\"head.bias\": \"\(s4)\\u0000.txt\""))
        }))
        cases.append(("symlink out", nil, "outside", {
            let d = try self.copySet(to: "symlink")
            let outside = self.path("outside.safetensors")
            try FileManager.default.moveItem(atPath: d + "/" + s4, toPath: outside)
            try FileManager.default.createSymbolicLink(atPath: d + "/" + s4, withDestinationPath: outside)
            return d
        }))
        cases.append(("fifo", s4, "is a FIFO (named pipe), not a regular file", {
            let d = try self.copySet(to: "fifo")
            try FileManager.default.removeItem(atPath: d + "/" + s4)
            XCTAssertEqual(mkfifo(d + "/" + s4, 0o600), 0)
            return d
        }))
        cases.append(("directory", s4, "is a directory, not a regular file", {
            let d = try self.copySet(to: "dirshard")
            try FileManager.default.removeItem(atPath: d + "/" + s4)
            try FileManager.default.createDirectory(atPath: d + "/" + s4, withIntermediateDirectories: false)
            return d
        }))
        cases.append(("link to /dev/zero", nil, "resolves (through a symbolic link) to /dev/zero", {
            let d = try self.copySet(to: "devzero")
            try FileManager.default.removeItem(atPath: d + "/" + s4)
            try FileManager.default.createSymbolicLink(atPath: d + "/" + s4, withDestinationPath: "/dev/zero")
            return d
        }))
        cases.append(("total_size", nil, "metadata.total_size is 22905 bytes but the 13 tensors of the 4 shards hold 22904", {
            try self.copySet(to: "total", index: replacing("22904", "22905"))
        }))
        cases.append(("total_size type", nil, "metadata.total_size is not a non-negative integer", {
            try self.copySet(to: "totaltype", index: replacing("22904", "\"big\""))
        }))
        cases.append(("malformed", nil, "index: invalid JSON", {
            try self.copySet(to: "malformed", index: { String($0.dropLast(3)) })
        }))
        cases.append(("duplicate key", nil, "duplicate key 'head.bias'", {
            try self.copySet(to: "dupkey", index: replacing("\"weight_map\": {", "\"weight_map\": {\n    \"head.bias\": \"\(s4)\","))
        }))
        cases.append(("no weight_map", nil, "index has no 'weight_map'", {
            try self.copySet(to: "nomap", index: replacing("weight_map", "weights_map"))
        }))
        cases.append(("weight_map value", nil, "weight_map value is a number", {
            try self.copySet(to: "mapvalue", index: replacing("\"head.bias\": \"\(s4)\"", "\"head.bias\": 4"))
        }))
        cases.append(("total_size over .bin files", nil, "more than the 4 shard files hold", {
            try self.copySet("bin", to: "binsize", index: replacing("22904", "9922904"))
        }))
        for c in cases {
            let dir = try c.make()
            guard let e = error(dir) else { XCTFail("\(c.name): no error"); continue }
            let line = e.description
            XCTAssertTrue(line.contains(c.fragment), "\(c.name): \(line)")
            XCTAssertTrue(line.contains(".index.json"), "\(c.name) does not name the index: \(line)")
            if let shard = c.shard { XCTAssertEqual(e.shard, shard, "\(c.name): \(line)") }
            XCTAssertFalse(line.contains("\n"), c.name)
        }
    }

    /// A Hugging Face cache entry: `snapshots/<rev>/` holds links into `../../blobs/`, which are followed.
    func testHuggingFaceCacheLinksAreFollowed() throws {
        let repo = path("models--x--y")
        let blobs = repo + "/blobs", snap = repo + "/snapshots/abc123"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: snap, withIntermediateDirectories: true)
        let src = Fixtures.path("shards/st")
        for (i, name) in try FileManager.default.contentsOfDirectory(atPath: src).enumerated() {
            try FileManager.default.copyItem(atPath: src + "/" + name, toPath: blobs + "/blob\(i)")
            try FileManager.default.createSymbolicLink(atPath: snap + "/" + name, withDestinationPath: "../../blobs/blob\(i)")
        }
        let sd = try Checkpoint.open(snap)
        XCTAssertEqual(sd.tensors.count, 13)
        XCTAssertEqual(try sd["head.bias"]?.load().bytes.count, 80)
    }

    /// A shard changed after the index was read: the lazy load's error names the index and the shard.
    func testLazyLoadErrorsNameTheShard() throws {
        let dir = try copySet()
        let sd = try Checkpoint.open(dir)
        let p = dir + "/model-00002-of-00004.safetensors"
        try FileManager.default.removeItem(atPath: p)
        try Data(repeating: 0, count: 10).write(to: URL(fileURLWithPath: p))
        // Mapped files keep the old bytes (unlinked, not truncated): the load still succeeds, from the same file.
        XCTAssertEqual(try sd["blocks.0.mlp.fc1.weight"]?.load().bytes.count, 10240)
        let e = checkpointError { _ = try ShardedCheckpoint.inShard(index: "i.index.json", shard: "s", path: "/x/s") {
            throw CheckpointError("boom", file: "/x/s", offset: 3)
        } }
        XCTAssertEqual(e?.description, "i.index.json: shard 's', byte 3: boom")
    }
}

