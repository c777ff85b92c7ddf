import Checkpoints
import Foundation
import TensorCore
import XCTest

/// Sharded checkpoints through the built binary: a Hugging Face sharded set (Tests/CheckpointsTests/Fixtures/shards,
/// written by huggingface_hub) converts to one file holding exactly the unsharded original's tensors, and
/// `--max-shard-size` output is laid out as Hugging Face lays it out.
final class ShardsCLITests: XCTestCase {
    static let fixtures = (((#filePath as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent as NSString)
        .appendingPathComponent("CheckpointsTests/Fixtures/shards")
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("weights-shards-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func out(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    /// Same names, dtypes, shapes and bytes, in `ordered` order when given.
    func assertSameTensors(_ a: StateDict, _ b: StateDict, ordered: Bool = false, _ label: String,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        if ordered { XCTAssertEqual(a.names, b.names, label, file: file, line: line) }
        XCTAssertEqual(Set(a.names), Set(b.names), label, file: file, line: line)
        for t in a.tensors {
            guard let u = b[t.name] else { continue }
            XCTAssertEqual(t.dtype, u.dtype, "\(label): \(t.name)", file: file, line: line)
            XCTAssertEqual(t.shape, u.shape, "\(label): \(t.name)", file: file, line: line)
            XCTAssertEqual(try t.load().bytes, try u.load().bytes, "\(label): \(t.name)", file: file, line: line)
        }
    }

    /// Both kinds (and legacy .bin), given as the folder or the index: one file, bit for bit the original's tensors.
    func testShardedInputConvertsToTheUnshardedOriginal() throws {
        let original = try Checkpoint.open("\(Self.fixtures)/original.safetensors")
        for (kind, index) in [("st", "model.safetensors.index.json"), ("bin", "pytorch_model.bin.index.json"), ("legacy", "pytorch_model.bin.index.json")] {
            for input in ["\(Self.fixtures)/\(kind)", "\(Self.fixtures)/\(kind)/\(index)"] {
                let o = out("\(kind)-\(UUID().uuidString).safetensors")
                let r = try CLI.run(["convert", input, "-o", o])
                XCTAssertEqual(r.status, 0, r.stderr)
                let sd = try Checkpoint.open(o)
                XCTAssertEqual(sd.format, .safetensors)
                try assertSameTensors(original, sd, input)
                let meta = Dictionary(uniqueKeysWithValues: sd.metadata.map { ($0.name, $0.value.description) })
                XCTAssertEqual(meta["source_file"], index)
                XCTAssertEqual(meta["source_shards"], "4")
            }
            let r = try CLI.run(["inspect", "\(Self.fixtures)/\(kind)"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("shards: 4"), r.stdout)
        }
    }
}
