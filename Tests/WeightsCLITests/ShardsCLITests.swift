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

    /// `--max-shard-size`: the folder, the round trip back to the source, and the refusals.
    func testShardedOutput() throws {
        let source = "\(Self.fixtures)/original.pth"
        let original = try Checkpoint.open(source)
        let dir = out("sharded")
        var r = try CLI.run(["convert", source, "-o", dir, "--max-shard-size", "6KB"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("(safetensors, 4 shards)"), r.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(),
                       (1...4).map { "model-0000\($0)-of-00004.safetensors" } + ["model.safetensors.index.json"])
        let back = try Checkpoint.open(dir)
        try assertSameTensors(original, back, "round trip")
        // Output placement and names are huggingface_hub's: the same files, tensor for tensor, as its own save.
        let hf = try Checkpoint.open("\(Self.fixtures)/st")
        for (ours, theirs) in zip(back.shards, hf.shards) {
            XCTAssertEqual((ours as NSString).lastPathComponent, (theirs as NSString).lastPathComponent)
            XCTAssertEqual(Set(try Checkpoint.open(ours).names), Set(try Checkpoint.open(theirs).names), ours)
        }
        // Again: exists; --force replaces it. Into the input's own folder: refused.
        r = try CLI.run(["convert", source, "-o", dir, "--max-shard-size", "6KB"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("already exists (use --force"), r.stderr)
        r = try CLI.run(["convert", source, "-o", dir, "--max-shard-size", "1GB", "--force"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.safetensors"])
        for input in [dir, "\(dir)/model.safetensors"] {
            r = try CLI.run(["convert", input, "-o", dir, "--max-shard-size", "6KB", "--force"])
            XCTAssertEqual(r.status, 1, input)
            XCTAssertTrue(r.stderr.contains("refusing to write over the input"), r.stderr)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.safetensors"])
        // Usage errors: no -o, --to h5, a size that is none.
        for args in [["--max-shard-size", "6KB"], ["-o", out("x"), "--max-shard-size", "6KB", "--to", "h5"], ["-o", out("x"), "--max-shard-size", "6XB"]] {
            r = try CLI.run(["convert", source] + args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out("x")))
    }

    /// Shards of different kinds merge their pickle notices, metadata and tensors: a payload riding in one `.bin`
    /// shard is reported for the whole set (a warning, and `--strict` refuses it), as for a single file.
    func testNoticesOfAllShardsAreMerged() throws {
        let dir = out("mixed")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let payload = ((#filePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("Fixtures/payload_beside_tensors_zip.pth")
        try FileManager.default.copyItem(atPath: payload, toPath: dir + "/a-00001.bin")
        try FileManager.default.copyItem(atPath: "\(Self.fixtures)/original.safetensors", toPath: dir + "/a-00002.safetensors")
        var map: [String] = []
        var total = 0
        for shard in ["a-00001.bin", "a-00002.safetensors"] {
            let sd = try Checkpoint.open(dir + "/" + shard)
            map += sd.names.map { "\"\($0)\": \"\(shard)\"" }
            total += sd.totalBytes
        }
        try "{\"metadata\": {\"total_size\": \(total)}, \"weight_map\": {\(map.joined(separator: ", "))}}".write(toFile: dir + "/a.index.json", atomically: false, encoding: .utf8)
        let sd = try Checkpoint.open(dir)
        XCTAssertEqual(sd.format, .pytorchZip)
        XCTAssertEqual(sd.tensors.count, 15)
        XCTAssertEqual(sd.neutralisedGlobals, ["posix.system (os.system)"])
        XCTAssertTrue(sd.metadata.contains { $0.name == "extra.0" })
        XCTAssertTrue(sd.metadata.contains { $0.name == "format" })
        var r = try CLI.run(["inspect", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning:") && r.stderr.contains("posix.system"), r.stderr)
        r = try CLI.run(["convert", dir, "-o", out("strict.safetensors"), "--strict"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("posix.system"), r.stderr)
    }

    /// SIGTERM / SIGINT / SIGHUP after the first shard is finished: the temporary folder goes, finished shard and
    /// all, nothing appears at the destination, and the process dies of the signal.
    func testSignalsRemoveThePartialSet() throws {
        var elements = 1 << 20
        let input = out("big.safetensors")
        func partial() -> String? {
            ((try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? []).first { $0.contains(".partial-") }
        }
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            var caught = false
            for _ in 0..<4 where !caught {
                var sd = StateDict(format: .safetensors, file: "")
                for i in 0..<6 {
                    sd.tensors.append(TensorEntry(name: "t\(i)", tensor: Tensor(dtype: .float32, shape: [elements], bytes: [UInt8](repeating: 0x3F, count: 4 * elements))))
                }
                try? FileManager.default.removeItem(atPath: input)
                let o = try AtomicOutput(destination: input, overwrite: false)
                try SafetensorsWriter.write(sd, to: o, dtype: nil, metadata: [:])
                try o.commit()
                let dest = out("sharded")
                let p = try Spawned(["convert", input, "-o", dest, "--max-shard-size", "\(2 * elements)", "--dtype", "bfloat16"])
                // Wait until the temporary folder holds a finished shard, then freeze, signal, resume.
                let deadline = Date().addingTimeInterval(60)
                var ready = false
                while p.poll() == nil, Date() < deadline, !ready {
                    if let name = partial(), let inside = try? FileManager.default.contentsOfDirectory(atPath: tmp.path + "/" + name) {
                        ready = inside.contains { $0.hasPrefix("model-00001-of-") }
                    }
                    if !ready { usleep(200) }
                }
                if ready, p.poll() == nil {
                    kill(p.pid, SIGSTOP)
                    kill(p.pid, sig)
                    kill(p.pid, SIGCONT)
                    let r = p.wait()
                    XCTAssertEqual(r.status, -sig, "signal \(sig): \(r.stderr)")
                    XCTAssertNil(partial(), "signal \(sig): temporary folder left")
                    XCTAssertFalse(FileManager.default.fileExists(atPath: dest))
                    caught = true
                } else {
                    _ = p.wait()
                    try? FileManager.default.removeItem(atPath: dest)
                    elements *= 2  // finished before it could be caught: a larger input
                }
            }
            XCTAssertTrue(caught, "signal \(sig): never caught a sharded convert in progress")
        }
    }
}

/// Sets of more files than fixed resources allow, through the binary.
final class ManyShardsCLITests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("weights-many-shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func out(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    /// A safetensors file of `count` float32 tensors of `elements` each.
    func writeInput(_ path: String, count: Int, elements: Int) throws {
        var sd = StateDict(format: .safetensors, file: "")
        for i in 0..<count {
            sd.tensors.append(TensorEntry(name: "t\(i)", tensor: Tensor(dtype: .float32, shape: [elements],
                                                                        bytes: [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 4 * elements))))
        }
        try? FileManager.default.removeItem(atPath: path)
        let o = try AtomicOutput(destination: path, overwrite: false)
        try SafetensorsWriter.write(sd, to: o, dtype: nil, metadata: [:])
        try o.commit()
    }

    /// SIGTERM / SIGINT / SIGHUP once more than 64 shards are finished (more than `PendingOutputs` has slots):
    /// the whole temporary folder goes, nothing appears at the destination, the process dies of the signal.
    func testSignalsRemoveMoreShardsThanSlots() throws {
        var elements = 1 << 12
        let input = out("many.safetensors")
        func partial() -> String? {
            ((try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? []).first { $0.contains(".partial-") }
        }
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            var caught = false
            for _ in 0..<5 where !caught {
                try writeInput(input, count: 120, elements: elements)
                let dest = out("sharded")
                let p = try Spawned(["convert", input, "-o", dest, "--max-shard-size", "\(4 * elements)", "--sync"])
                let deadline = Date().addingTimeInterval(60)
                var ready = false
                while p.poll() == nil, Date() < deadline, !ready {
                    if let name = partial(), let inside = try? FileManager.default.contentsOfDirectory(atPath: tmp.path + "/" + name) {
                        ready = inside.contains { $0.hasPrefix("model-00080-of-") }
                    }
                    if !ready { usleep(200) }
                }
                if ready, p.poll() == nil {
                    kill(p.pid, SIGSTOP)
                    let name = partial()
                    let finished = name.flatMap { try? FileManager.default.contentsOfDirectory(atPath: tmp.path + "/" + $0) }?.count ?? 0
                    kill(p.pid, sig)
                    kill(p.pid, SIGCONT)
                    let r = p.wait()
                    XCTAssertEqual(r.status, -sig, "signal \(sig): \(r.stderr)")
                    XCTAssertGreaterThan(finished, 64, "signal \(sig)")
                    XCTAssertNil(partial(), "signal \(sig): temporary folder left with \(finished) files")
                    XCTAssertFalse(FileManager.default.fileExists(atPath: dest))
                    caught = true
                } else {
                    _ = p.wait()
                    try? FileManager.default.removeItem(atPath: dest)
                    elements *= 2  // finished before it could be caught: larger shards
                }
            }
            XCTAssertTrue(caught, "signal \(sig): never caught a sharded convert in progress")
        }
    }

    /// 1500 shards under a hard and soft RLIMIT_NOFILE of 64 (set by the shell before exec, so the binary cannot
    /// raise it): convert reads the set into one file, identical to converting the unsharded original.
    func testManyShardsUnderALowDescriptorLimit() throws {
        let input = out("in.safetensors")
        try writeInput(input, count: 1500, elements: 2)
        var r = try CLI.run(["convert", input, "-o", out("sharded"), "--max-shard-size", "8"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out("sharded")).count, 1501)
        guard let exe = CLI.binary else { throw XCTSkip("no binary") }
        let limited = "ulimit -n 64 && exec \"$0\" \"$@\""
        for source in [out("sharded"), out("sharded") + "/model.safetensors.index.json"] {
            try? FileManager.default.removeItem(atPath: out("one.safetensors"))
            r = try CLI.run(["-c", limited, exe, "convert", source, "-o", out("one.safetensors")], executable: "/bin/sh")
            XCTAssertEqual(r.status, 0, r.stderr)
            r = try CLI.run(["-c", limited, exe, "inspect", source], executable: "/bin/sh")
            XCTAssertEqual(r.status, 0, r.stderr)
            // The same tensors in the same order and bytes as the unsharded original (the output adds provenance metadata).
            let one = try Checkpoint.open(out("one.safetensors")), original = try Checkpoint.open(input)
            XCTAssertEqual(one.names, original.names, source)
            for t in original.tensors { XCTAssertEqual(try one[t.name]?.load().bytes, try t.load().bytes, t.name) }
        }
        // The limit really is in force in the child: too low for even the standard streams and one shard.
        r = try CLI.run(["-c", "ulimit -n 3 && exec \"$0\" \"$@\"", exe, "convert", out("sharded"), "-o", out("none.safetensors")], executable: "/bin/sh")
        XCTAssertNotEqual(r.status, 0)
    }
}
