@testable import Checkpoints
import Foundation
import TensorCore
import XCTest

/// `--max-shard-size` output: huggingface_hub's placement (Fixtures/shards/split.json, from its own
/// split_torch_state_dict_into_shards), transformers' index layout, the size spellings, and the set's atomicity.
final class ShardedWriterTests: TemporaryDirectoryTestCase {
    func testSizesAsHuggingFaceSpellsThem() {
        let rows: [(String, Int?)] = [
            ("5GB", 5_000_000_000), ("500MB", 500_000_000), ("2GiB", 2 << 30), ("100KB", 100_000), ("1TB", 1_000_000_000_000),
            ("5gb", 5_000_000_000), (" 4 kib ", 4096), ("1.5GB", 1_500_000_000), ("0.5KB", 500), ("1.0000000001KB", 1000),
            ("3MiB", 3 << 20), ("1TiB", 1 << 40), ("123456", 123456),
            ("", nil), ("GB", nil), ("5XB", nil), ("-5GB", nil), ("0GB", nil), ("0.0001KB", nil), ("5 G B", nil), ("1e3KB", nil),
            ("99999999999TB", nil), ("9223372036854775808", nil), (".", nil), ("1..5GB", nil),
        ]
        for (text, want) in rows { XCTAssertEqual(ShardSize.parse(text), want, "'\(text)'") }
    }

    /// The split of the fixture state dict under four limits, tensor for tensor, as huggingface_hub made it.
    func testPlacementIsHuggingFaceHubs() throws {
        let original = try Checkpoint.open(Fixtures.path("shards/original.safetensors"))
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("shards/split.json")))) as? [String: Any])
        let order = try XCTUnwrap(doc["order"] as? [String])
        let sizes = try order.map { try XCTUnwrap(original[$0]).byteCount }
        let limits = ["6KB": 6000, "4KiB": 4096, "1KB": 1000, "100KB": 100_000]
        let splits = try XCTUnwrap(doc["splits"] as? [String: [String: Any]])
        for (label, limit) in limits {
            let hf = try XCTUnwrap(splits[label]?["filename_to_tensors"] as? [String: [String]])
            let ours = ShardedSafetensorsWriter.place(sizes, limit: limit)
            XCTAssertEqual(ours.count, hf.count, label)
            for (i, members) in ours.enumerated() {
                let name = ours.count == 1 ? "model.safetensors" : ShardedSafetensorsWriter.shardName(i + 1, of: ours.count)
                XCTAssertEqual(members.map { order[$0] }, hf[name], "\(label) \(name)")
            }
        }
        XCTAssertEqual(ShardedSafetensorsWriter.shardName(3, of: 123456), "model-00003-of-123456.safetensors")
    }

    func testIndexIsWhatTransformersWrites() {
        let json = String(decoding: ShardedSafetensorsWriter.indexJSON(weightMap: [("b", "m-2"), ("a\u{e9}", "m-1"), ("a", "m-1"), ("\u{1F600}\"\u{7F}\n", "m-2")], totalSize: 12), as: UTF8.self)
        XCTAssertEqual(json, """
        {
          "metadata": {
            "total_size": 12
          },
          "weight_map": {
            "a": "m-1",
            "a\\u00e9": "m-1",
            "b": "m-2",
            "\\ud83d\\ude00\\"\\u007f\\n": "m-2"
          }
        }

        """)
    }

    func testWriteReadBackAndReplace() throws {
        let original = try Checkpoint.open(Fixtures.path("shards/original.safetensors"))
        let dir = path("out")
        let w = try ShardedSafetensorsWriter.write(original, toFolder: dir, maxShardSize: 6000, dtype: nil, metadata: ["source_file": "x"],
                                                   overwrite: false, durable: true)
        XCTAssertEqual(w.shardCount, 4)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(),
                       (1...4).map { ShardedSafetensorsWriter.shardName($0, of: 4) } + ["model.safetensors.index.json"])
        let back = try Checkpoint.open(dir)
        XCTAssertEqual(back.shards.count, 4)
        XCTAssertEqual(Set(back.names), Set(original.names))
        for t in original.tensors { XCTAssertEqual(try back[t.name]?.load().bytes, try t.load().bytes, t.name) }
        let shard1 = try Checkpoint.open(dir + "/" + ShardedSafetensorsWriter.shardName(1, of: 4))
        let first = try XCTUnwrap(ShardedSafetensorsWriter.place(original.tensors.map(\.byteCount), limit: 6000).first)
        XCTAssertEqual(shard1.names, first.map { original.tensors[$0].name })  // source order inside the shard
        XCTAssertEqual(Set(shard1.metadata.map(\.name)), ["format", "source_file"])
        XCTAssertEqual(back.metadata.first { $0.name == "format" }?.value, .string("pt"))
        // No temporary folder is left beside it.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.hasPrefix(".") }, [])

        // Existing folder: refused without overwrite; with it, the whole set is replaced (4 shards → 1 file).
        let again = { (over: Bool, limit: Int) in
            try ShardedSafetensorsWriter.write(original, toFolder: dir, maxShardSize: limit, dtype: nil, metadata: [:], overwrite: over, durable: false)
        }
        XCTAssertTrue(checkpointError { _ = try again(false, 6000) }?.description.contains("already exists") ?? false)
        XCTAssertEqual(try again(true, 1 << 20).shardCount, 1)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.safetensors"])
        XCTAssertEqual(try Checkpoint.open(dir + "/model.safetensors").names, original.names)
        // A folder holding anything else is never replaced.
        try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        let e = checkpointError { _ = try again(true, 6000) }
        XCTAssertTrue(e?.description.contains("holds 'config.json', which is not a file of a sharded safetensors output") ?? false, "\(String(describing: e))")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["config.json", "model.safetensors"])
        // A file or a symbolic link at the destination.
        let file = try write([1], to: "file")
        XCTAssertTrue(checkpointError { _ = try ShardedSafetensorsWriter.write(original, toFolder: file, maxShardSize: 6000, dtype: nil, metadata: [:], overwrite: true, durable: false) }?
            .description.contains("is a folder") ?? false)
        try FileManager.default.createSymbolicLink(atPath: path("link"), withDestinationPath: dir)
        XCTAssertTrue(checkpointError { _ = try ShardedSafetensorsWriter.write(original, toFolder: path("link"), maxShardSize: 6000, dtype: nil, metadata: [:], overwrite: true, durable: false) }?
            .description.contains("symbolic link") ?? false)
    }

    /// A tensor that fails to load in the third shard: nothing at the destination, no temporary folder left.
    func testFailureLeavesNothing() throws {
        var sd = try Checkpoint.open(Fixtures.path("shards/original.safetensors"))
        sd.tensors.insert(TensorEntry(name: "bad", dtype: .float32, shape: [4], location: "memory") {
            throw CheckpointError("cannot read", file: "src")
        }, at: 6)
        let dir = path("failed")
        let e = checkpointError { _ = try ShardedSafetensorsWriter.write(sd, toFolder: dir, maxShardSize: 6000, dtype: nil, metadata: [:], overwrite: false, durable: false) }
        XCTAssertEqual(e?.key, "bad")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path), [])
    }

    /// `--dtype` casts before sizing: float32 → float16 halves the floating tensors, so fewer shards.
    func testCastSizesThePlacement() throws {
        let original = try Checkpoint.open(Fixtures.path("shards/original.safetensors"))
        let w = try ShardedSafetensorsWriter.write(original, toFolder: path("half"), maxShardSize: 6000, dtype: .float16, metadata: [:], overwrite: false, durable: false)
        let back = try Checkpoint.open(path("half"))
        XCTAssertEqual(back["embed.weight"]?.dtype, .float16)
        XCTAssertEqual(back["head.bias"]?.dtype, .int64)
        XCTAssertEqual(w.shardCount, ShardedSafetensorsWriter.place(original.tensors.map { ShapeMath.byteCount($0.shape, $0.dtype.cast(to: .float16)) ?? 0 }, limit: 6000).count)
        let index = try String(contentsOfFile: path("half/model.safetensors.index.json"), encoding: .utf8)
        XCTAssertTrue(index.contains("\"total_size\": \(back.totalBytes)\n"), index)
    }
}

/// Path splitting without NSString (which traps on some one-character paths such as "o").
final class PathTextTests: XCTestCase {
    func testParentAndLastComponent() {
        let rows: [(String, String, String)] = [("o", "", "o"), ("ab", "", "ab"), ("x/o", "x", "o"), ("/o", "/", "o"), ("o/", "", "o"),
                                                ("/a/b//", "/a", "b"), ("a//b", "a", "b"), ("/", "/", "/"), ("", "", "")]
        for (path, parent, last) in rows {
            XCTAssertEqual(PathText.parent(path), parent, "'\(path)'")
            XCTAssertEqual(PathText.lastComponent(path), last, "'\(path)'")
        }
        XCTAssertEqual(PathText.join("", "m"), "m")
        XCTAssertEqual(PathText.join("/", "m"), "/m")
        XCTAssertEqual(PathText.join("d", "m"), "d/m")
    }
}
