@testable import Checkpoints
import Foundation
import TensorCore
import XCTest

/// Sets of more files than the fixed resources allow: signal cleanup of a sharded output beyond the 64
/// `PendingOutputs` slots, and sharded inputs of more shards than descriptors kept open.
final class ManyFilesTests: TemporaryDirectoryTestCase {
    /// `count` float32 tensors of `elements` each, distinct contents.
    func stateDict(_ count: Int, elements: Int = 4) -> StateDict {
        var sd = StateDict(format: .safetensors, file: "")
        for i in 0..<count {
            let values = (0..<elements).map { Float(i * elements + $0) }
            sd.tensors.append(TensorEntry(name: "t\(i)", tensor: Tensor(dtype: .float32, shape: [elements], bytes: values.withUnsafeBytes { Array($0) })))
        }
        return sd
    }

    /// A sharded output of 100 finished files: the signal-time cleanup (what the handler runs) removes all of
    /// them and the temporary folder, although only one `PendingOutputs` slot is used for the whole set.
    func testSignalCleanupCoversAnyNumberOfShards() throws {
        let set = try ShardedOutput(destination: path("out"), overwrite: false)
        for i in 0..<100 {
            let f = try set.file(String(format: "model-%05d-of-00100.safetensors", i + 1))
            try f.write([UInt8](repeating: UInt8(i), count: 64))
            try set.finish(f, durable: false)
        }
        let open = try set.file("model.safetensors.index.json")  // one still being written
        try open.write([0x7B])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: set.temporaryDirectory).count, 101)
        let armed = PendingOutputs.armedPaths
        XCTAssertTrue(armed.contains(set.temporaryDirectory), "\(armed)")
        XCTAssertLessThanOrEqual(armed.count, 2, "one slot for the folder, one for the file being written: \(armed)")
        PendingOutputs.removeArmed()
        XCTAssertFalse(FileManager.default.fileExists(atPath: set.temporaryDirectory))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path), [])
        // Committed: the folder's slot is released; nothing of the destination is armed.
        let done = try ShardedOutput(destination: path("done"), overwrite: false)
        let f = try done.file("model.safetensors")
        try f.write([1, 2, 3])
        try done.finish(f, durable: false)
        try done.commit()
        XCTAssertFalse(PendingOutputs.armedPaths.contains { $0.hasPrefix(path(".done")) }, "\(PendingOutputs.armedPaths)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path("done")), ["model.safetensors"])
    }

    /// The folder cleanup does not follow a symbolic link planted at the temporary folder's path.
    func testSignalCleanupDoesNotFollowALink() throws {
        try FileManager.default.createDirectory(atPath: path("victim"), withIntermediateDirectories: true)
        try Data([1]).write(to: URL(fileURLWithPath: path("victim/keep")))
        try FileManager.default.createSymbolicLink(atPath: path("link"), withDestinationPath: path("victim"))
        guard let slot = PendingOutputs.register(path("link"), tree: true) else { return XCTFail("no slot") }
        defer { PendingOutputs.unregister(slot) }
        PendingOutputs.removeArmed()
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("victim/keep")))
        XCTAssertNotNil(try? FileManager.default.destinationOfSymbolicLink(atPath: path("link")))
    }

    /// 1500 shards (more than a default soft RLIMIT_NOFILE of 1024): read as one set, every tensor loads and
    /// copies (span path) with at most `SourceFilePool.limit` descriptors open, and the result is the original.
    func testManyShardsStayWithinTheDescriptorPool() throws {
        let original = stateDict(1500)
        let dir = path("sharded")
        let w = try ShardedSafetensorsWriter.write(original, toFolder: dir, maxShardSize: 16, dtype: nil, metadata: [:], overwrite: false, durable: false)
        XCTAssertEqual(w.shardCount, 1500)
        let sd = try Checkpoint.open(dir)
        XCTAssertEqual(sd.shards.count, 1500)
        XCTAssertLessThanOrEqual(SourceFilePool.openCount, SourceFilePool.limit)
        for t in original.tensors { XCTAssertEqual(try sd[t.name]?.load().bytes, try t.load().bytes, t.name) }
        let o = try AtomicOutput(destination: path("one.safetensors"), overwrite: false)
        try SafetensorsWriter.write(sd, to: o, dtype: nil, metadata: [:])
        try o.commit()
        XCTAssertLessThanOrEqual(SourceFilePool.openCount, SourceFilePool.limit)
        let back = try Checkpoint.open(path("one.safetensors"))
        XCTAssertEqual(back.names, original.names)
        for t in original.tensors { XCTAssertEqual(try back[t.name]?.load().bytes, try t.load().bytes, t.name) }
    }

    /// A pooled file whose descriptor was closed is reopened on use; if the path now holds another file, the
    /// read is refused, naming it.
    func testReopenedFileMustBeTheSame() throws {
        let p = path("a.bin")
        try Data([1, 2, 3, 4]).write(to: URL(fileURLWithPath: p))
        let f = try SourceFile(path: p)
        SourceFilePool.closeIdle(keep: 0)
        XCTAssertEqual(try f.withDescriptor { fd -> Int in var b = [UInt8](repeating: 0, count: 4); return pread(fd, &b, 4, 0) }, 4)
        SourceFilePool.closeIdle(keep: 0)
        // Another file renamed over the path (created while the first still exists, so it cannot reuse its inode).
        try Data([9, 9, 9, 9]).write(to: URL(fileURLWithPath: path("b.bin")))
        XCTAssertEqual(rename(path("b.bin"), p), 0)
        let e = checkpointError { _ = try f.withDescriptor { $0 } }
        XCTAssertEqual(e?.file, p)
        XCTAssertTrue(e?.description.contains("no longer the file") ?? false, "\(String(describing: e))")
    }
}
