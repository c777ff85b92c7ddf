@testable import Checkpoints
import Foundation
import TensorCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 12's output / terminal / file-system classes through the `weights` binary: escaped human output,
/// metadata limits, the atomic no-replace move, signals, non-regular inputs and outputs, long output names and
/// neutralised pickle globals. Inputs are the small files of Fixtures/ (Tools/make_cli_safety_fixtures.py) or
/// generated here.
final class SafetyCLITests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("weights-safety-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    // MARK: 11. terminal escapes

    /// Tensor names and metadata with ESC, CR, LF, BEL and a bidi override: the inspect table, the convert summary
    /// and error lines carry none of those bytes, only their visible escapes; `--json` keeps the exact names.
    func testHumanOutputEscapesControlCharacters() throws {
        let input = fixture("escapes.safetensors")
        let table = try CLI.run(["inspect", input])
        XCTAssertEqual(table.status, 0, table.stderr)
        Self.assertNoControlBytes(table.stdout, "inspect table")
        for visible in ["\\x1b[31mred\\x1b[0m", "line\\r\\nfeed\\x07bell", "bidi\\u{202e}evil",
                        "note\\x1b]0;title\\x07 = first\\nsecond\\rthird\\x1b[2J"] {
            XCTAssertTrue(table.stdout.contains(visible), "missing \(visible) in:\n\(table.stdout)")
        }
        // file, format, column titles, 4 tensors, totals, "metadata:", 1 entry
        XCTAssertEqual(table.stdout.split(separator: "\n").count, 10, table.stdout)

        let json = try CLI.run(["inspect", input, "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let names = (doc["tensors"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        XCTAssertTrue(names.contains("line\r\nfeed\u{07}bell"), "\(names)")

        // A hostile output name in the convert summary, and in an error line.
        let out = tmp.appendingPathComponent("out\u{1B}[2Jx\nname.safetensors").path
        let conv = try CLI.run(["convert", input, "-o", out])
        XCTAssertEqual(conv.status, 0, conv.stderr)
        Self.assertNoControlBytes(conv.stdout, "convert summary")
        XCTAssertTrue(conv.stdout.contains("out\\x1b[2Jx\\nname.safetensors"), conv.stdout)
        let bad = try CLI.run(["inspect", tmp.appendingPathComponent("missing\u{1B}]0;pwned\u{07}\r.pth").path])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderrLines.count, 1, bad.stderr)
        Self.assertNoControlBytes(bad.stderr, "error line")
        XCTAssertTrue(bad.stderr.contains("missing\\x1b]0;pwned\\x07\\r.pth"), bad.stderr)
    }

    /// `verify`'s human report: a reference holding a tensor whose name carries escapes (listed as not compared)
    /// prints it escaped.
    func testVerifyReportEscapesNames() throws {
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
        let ref = try Checkpoint.open(tests + "/ModelsTests/Fixtures/vit_tiny_patch8_32.reference.safetensors")
        var tensors = try ref.tensors.map { ($0.name, try $0.load()) }
        tensors.append(("evil\u{1B}[2J\nPASS", Tensor(dtype: .float32, shape: [1], bytes: [0, 0, 0, 0])))
        let hostile = tmp.appendingPathComponent("reference.safetensors").path
        try writeSafetensors(hostile, tensors)
        let r = try CLI.run(["verify", "--model", "vit_tiny_patch8_32", "--weights", tests + "/VerificationTests/Fixtures/vit_tiny_patch8_32.jax.npz",
                             "--reference", hostile])
        XCTAssertEqual(r.status, 0, r.stderr)
        Self.assertNoControlBytes(r.stdout, "verify report")
        XCTAssertTrue(r.stdout.contains("evil\\x1b[2J\\nPASS"), r.stdout)
    }

    func testEscapeTable() {
        let rows: [(String, String)] = [
            ("plain.name", "plain.name"),
            ("a\nb", "a\\nb"), ("a\rb", "a\\rb"), ("a\tb", "a\\tb"),
            ("\u{1B}[31m", "\\x1b[31m"), ("\u{07}", "\\x07"), ("\u{7F}", "\\x7f"), ("\u{9B}1m", "\\x9b1m"),
            ("x\u{202E}y", "x\\u{202e}y"), ("\u{2066}\u{2069}", "\\u{2066}\\u{2069}"), ("\u{2028}", "\\u{2028}"),
            ("ümlaut ✓ 中文", "ümlaut ✓ 中文"),
            ("\\x1b already escaped", "\\x1b already escaped"),
        ]
        for (input, expected) in rows {
            XCTAssertEqual(TerminalText.escape(input), expected, input.debugDescription)
            XCTAssertEqual(TerminalText.escape(TerminalText.escape(input)), expected, "idempotent: \(input.debugDescription)")
        }
        XCTAssertEqual(TerminalText.escape("abcdef", limit: 3), "abc…")
    }

    // MARK: 12. outputs every reader accepts

    /// A metadata entry over 64 KiB is not carried (one note naming it); the output holds the rest and reads back,
    /// in both formats.
    func testOversizedMetadataIsDroppedWithANote() throws {
        let input = tmp.appendingPathComponent("meta.safetensors").path
        let huge = String(repeating: "x", count: OutputMetadata.maxEntryBytes + 1)
        // Written by hand: our writer refuses such metadata.
        var header = Array("{\"__metadata__\":{\"huge\":\"\(huge)\",\"epoch\":\"3\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}".utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)
        var file = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        file += header + [UInt8](repeating: 0, count: 8)
        try Data(file).write(to: URL(fileURLWithPath: input))
        for to in ["safetensors", "h5"] {
            let out = tmp.appendingPathComponent("out." + to).path
            let r = try CLI.run(["convert", input, "-o", out, "--to", to])
            XCTAssertEqual(r.status, 0, "\(to): \(r.stderr)")
            XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("note: ") && r.stderr.contains("'huge' (65541 bytes)"), r.stderr)
            let sd = try Checkpoint.open(out)
            XCTAssertEqual(sd.names, ["w"])
            XCTAssertNil(sd.metadata.first { $0.name == "huge" }, to)
            XCTAssertEqual(sd.metadata.first { $0.name == "epoch" }?.value, .string("3"), to)
            XCTAssertTrue(sd.metadata.contains { $0.name == "source_format" }, "\(to): provenance kept")
        }
        XCTAssertEqual(try leftovers(), [])
    }

    /// The writers themselves refuse what no reader would accept: an oversized metadata entry, and a safetensors
    /// header over 100 MB (here from tensor names) — before writing, leaving no file.
    func testWritersRefuseUnreadableOutputs() throws {
        let dest = tmp.appendingPathComponent("refused.safetensors").path
        let t = Tensor(dtype: .float32, shape: [0], bytes: [])
        do {
            let out = try AtomicOutput(destination: dest)
            XCTAssertThrowsError(try SafetensorsWriter.write(StateDict(format: .safetensors, file: "", tensors: [TensorEntry(name: "w", tensor: t)]),
                                                             to: out, dtype: nil, metadata: ["big": String(repeating: "y", count: 70_000)])) {
                XCTAssertTrue("\($0)".contains("metadata entry of 70003 bytes exceeds"), "\($0)")
            }
            XCTAssertEqual(out.bytesWritten, 0)
        }
        // The 100 MB limit, scaled down to 10 kB so the test stays small: 100 names of 120 bytes.
        let many = (0..<100).map { TensorEntry(name: String(repeating: "n", count: 117) + String(format: "%03d", $0), tensor: t) }
        do {
            let out = try AtomicOutput(destination: dest)
            XCTAssertThrowsError(try SafetensorsWriter.write(StateDict(format: .safetensors, file: "", tensors: many), to: out, dtype: nil,
                                                             metadata: [:], headerLimit: 10_000)) {
                XCTAssertTrue("\($0)".contains("over the 10000-byte limit of safetensors readers; nothing written"), "\($0)")
            }
            XCTAssertEqual(out.bytesWritten, 0)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest))
        XCTAssertEqual(try leftovers(), [])
    }

    // MARK: 13. no-replace move

    /// A file that appears at the destination while a writer runs is never replaced without `overwrite`.
    func testCommitNeverReplacesAFileThatAppearedMeanwhile() throws {
        let dest = tmp.appendingPathComponent("raced.safetensors").path
        let out = try AtomicOutput(destination: dest, overwrite: false)
        try out.write([1, 2, 3])
        try Data("theirs".utf8).write(to: URL(fileURLWithPath: dest))
        XCTAssertThrowsError(try out.commit()) { XCTAssertTrue("\($0)".contains("already exists"), "\($0)") }
        XCTAssertEqual(try String(contentsOfFile: dest, encoding: .utf8), "theirs")

        // The same through the no-replace primitive itself (not the pre-check), renameat2 and the link fallback.
        XCTAssertNotNil(AtomicOutput.renameat2, "glibc has renameat2")
        for useRenameat2 in [true, false] {
            let a = tmp.appendingPathComponent("a").path, b = tmp.appendingPathComponent("b").path
            try Data("A".utf8).write(to: URL(fileURLWithPath: a))
            try Data("B".utf8).write(to: URL(fileURLWithPath: b))
            XCTAssertThrowsError(try AtomicOutput.renameNoReplace(a, b, useRenameat2: useRenameat2)) {
                XCTAssertTrue("\($0)".contains("already exists"), "\($0)")
            }
            XCTAssertEqual(try String(contentsOfFile: b, encoding: .utf8), "B")
            XCTAssertEqual(try String(contentsOfFile: a, encoding: .utf8), "A")
            try FileManager.default.removeItem(atPath: b)
            try AtomicOutput.renameNoReplace(a, b, useRenameat2: useRenameat2)
            XCTAssertEqual(try String(contentsOfFile: b, encoding: .utf8), "A")
            XCTAssertFalse(FileManager.default.fileExists(atPath: a))
            try FileManager.default.removeItem(atPath: b)
        }
    }

    /// Two converts to one output at once: exactly one succeeds, the other says the output exists.
    func testConcurrentConvertsToOneOutput() throws {
        let input = try copyFixture(CLIFixtures.checkpoints + "/torch/training_zip.pth", as: "in.pth")
        let out = tmp.appendingPathComponent("shared.safetensors").path
        for round in 0..<3 {
            try? FileManager.default.removeItem(atPath: out)
            let procs = try (0..<2).map { _ in try Spawned(["convert", input, "-o", out]) }
            let results = procs.map { $0.wait() }
            XCTAssertEqual(results.filter { $0.status == 0 }.count, 1, "round \(round): \(results.map(\.stderr))")
            for r in results where r.status != 0 {
                XCTAssertEqual(r.status, 1)
                XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
                XCTAssertTrue(r.stderr.contains("already exists (use --force to overwrite)"), r.stderr)
            }
            XCTAssertEqual(try Checkpoint.open(out).format, .safetensors)
        }
        XCTAssertEqual(try leftovers(), [])
    }

    // MARK: 14. signals

    /// SIGTERM, SIGINT or SIGHUP during a convert: the temporary file is removed, no output appears, and the
    /// process dies of that signal.
    func testSignalsRemoveTheTemporaryFile() throws {
        var elements = 1 << 20
        let input = tmp.appendingPathComponent("slow.safetensors").path
        for sig in [SIGTERM, SIGINT, SIGHUP] {
            var caught = false
            for _ in 0..<3 where !caught {
                try writeSafetensors(input, [("x", Tensor(dtype: .float32, shape: [elements], bytes: [UInt8](repeating: 0x3F, count: 4 * elements)))])
                let out = tmp.appendingPathComponent("slow.out.safetensors").path
                try? FileManager.default.removeItem(atPath: out)
                let p = try Spawned(["convert", input, "-o", out, "--dtype", "bfloat16"])
                // Wait for the temporary file, freeze the process, deliver the signal, let it run again.
                let deadline = Date().addingTimeInterval(60)
                while p.poll() == nil, Date() < deadline, (try leftovers()).isEmpty { usleep(200) }
                if p.poll() == nil, !(try leftovers()).isEmpty {
                    kill(p.pid, SIGSTOP)
                    kill(p.pid, sig)
                    kill(p.pid, SIGCONT)
                    let r = p.wait()
                    XCTAssertEqual(r.status, -sig, "signal \(sig): \(r.stderr)")
                    XCTAssertEqual(try leftovers(), [], "signal \(sig): temporary file left")
                    XCTAssertFalse(FileManager.default.fileExists(atPath: out))
                    caught = true
                } else {
                    _ = p.wait()
                    elements *= 4  // finished before it could be caught: try a larger input
                }
            }
            XCTAssertTrue(caught, "signal \(sig): never caught a convert in progress")
        }
    }

    // MARK: 15. non-regular destinations

    /// `-o` at a character device, FIFO, directory or symbolic link is refused, with or without --force, and the
    /// node is untouched.
    func testNonRegularDestinationsAreRefused() throws {
        let input = fixture("escapes.safetensors")
        let fifo = tmp.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let dir = tmp.appendingPathComponent("dir").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let target = tmp.appendingPathComponent("target.safetensors").path
        try Data("keep".utf8).write(to: URL(fileURLWithPath: target))
        let link = tmp.appendingPathComponent("link.safetensors").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let rows: [(String, String, mode_t)] = [
            ("/dev/null", "a character device", S_IFCHR), (fifo, "a FIFO", S_IFIFO), (dir, "a directory", S_IFDIR),
            (link, "symbolic link", S_IFLNK),
        ]
        for (path, fragment, kind) in rows {
            for force in [true, false] {
                let r = try CLI.run(["convert", input, "-o", path] + (force ? ["--force"] : []), timeout: 20)
                XCTAssertEqual(r.status, 1, "\(path) force=\(force): \(r.stdout)")
                XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
                XCTAssertTrue(r.stderr.contains(fragment), "\(path): \(r.stderr)")
                var st = stat()
                XCTAssertEqual(lstat(path, &st), 0)
                XCTAssertEqual(st.st_mode & S_IFMT, kind, "\(path) was replaced")
            }
        }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "keep")
        XCTAssertEqual(try leftovers(), [])
    }

    // MARK: 16. non-regular inputs

    /// A FIFO (which would block open() forever), a directory or a device as input: one line, at once.
    func testNonRegularInputsAreRefused() throws {
        let fifo = tmp.appendingPathComponent("input.fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let rows: [(String, String)] = [(fifo, "is a FIFO (named pipe), not a regular file"), (tmp.path, "is a directory holding no checkpoint index"),
                                        ("/dev/zero", "is a character device, not a regular file")]
        for (path, fragment) in rows {
            for args in [["inspect", path], ["convert", path, "-o", tmp.appendingPathComponent("o.safetensors").path]] {
                let r = try CLI.run(args, timeout: 10)
                XCTAssertFalse(r.timedOut, "\(args) blocked")
                XCTAssertEqual(r.status, 1, "\(args)")
                XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
                XCTAssertTrue(r.stderr.contains(fragment), "\(args): \(r.stderr)")
            }
        }
        XCTAssertThrowsError(try InputFile.open(fifo)) { XCTAssertTrue("\($0)".contains("FIFO"), "\($0)") }
        XCTAssertThrowsError(try MappedFile(path: fifo))
        XCTAssertThrowsError(try SourceFile(path: fifo))
    }

    // MARK: 17. inputs that shrink while read

    /// A checkpoint truncated after opening (it is memory-mapped): loading a tensor gives one error naming the file
    /// instead of SIGBUS, for each mapped format; bytes already mapped are never returned as zeros.
    func testTruncatedWhileMappedIsAnErrorNotSIGBUS() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let n = 64 * page
        let st = tmp.appendingPathComponent("shrink.safetensors").path
        try writeSafetensors(st, [("a", Tensor(dtype: .uint8, shape: [n], bytes: [UInt8](repeating: 7, count: n))),
                                  ("b", Tensor(dtype: .uint8, shape: [n], bytes: [UInt8](repeating: 9, count: n)))])
        let legacy = try copyFixture(CLIFixtures.checkpoints + "/torch/demo_resnet_legacy.pth", as: "shrink.pth")
        for path in [st, legacy] {
            let sd = try Checkpoint.open(path)
            let last = try XCTUnwrap(sd.tensors.max { $0.byteCount < $1.byteCount })
            XCTAssertEqual(truncate(path, 4096), 0)
            XCTAssertThrowsError(try last.load(), path) { e in
                XCTAssertTrue("\(e)".contains("shrank while it was being read") || "\(e)".contains("file ends"), "\(e)")
                XCTAssertTrue("\(e)".contains((path as NSString).lastPathComponent), "\(e)")
            }
        }
    }

    /// Any access to a vanished page — here a raw read of the mapping, as the header parsers do — is survived,
    /// reads zeros, and is reported by `checkIntact` and by the fault counter `Checkpoint.open` and loads consult.
    func testRawMappedAccessAfterTruncation() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let path = tmp.appendingPathComponent("raw.bin").path
        try Data(repeating: 0xAB, count: 8 * page).write(to: URL(fileURLWithPath: path))
        let file = try MappedFile(path: path)
        XCTAssertEqual(file.bytes[5 * page], 0xAB)
        XCTAssertNoThrow(try file.checkIntact())
        let before = MappingGuard.faultCount
        XCTAssertEqual(truncate(path, off_t(page)), 0)
        XCTAssertEqual(file.bytes[0], 0xAB)
        XCTAssertEqual(file.bytes[6 * page + 1], 0)  // would be SIGBUS without the guard
        XCTAssertThrowsError(try file.checkIntact()) { XCTAssertTrue("\($0)".contains("raw.bin") && "\($0)".contains("shrank"), "\($0)") }
        XCTAssertThrowsError(try MappingGuard.check(since: before))
        XCTAssertThrowsError(try file.read(0, 16))
    }

    /// The same through the binary: a convert frozen (SIGSTOP) once its output exists, its input truncated, then
    /// resumed, ends with one error line naming the input — exit 1, not SIGBUS — and leaves no file behind.
    func testInputTruncatedDuringConvert() throws {
        let input = tmp.appendingPathComponent("shrinking.safetensors").path
        let out = tmp.appendingPathComponent("shrinking.out.safetensors").path
        var elements = 1 << 16
        var caught = false
        for _ in 0..<3 where !caught {
            try writeSafetensors(input, (0..<16).map { i in
                ("t\(i)", Tensor(dtype: .float32, shape: [elements], bytes: [UInt8](repeating: UInt8(i), count: 4 * elements)))
            })
            let p = try Spawned(["convert", input, "-o", out, "--dtype", "float16"])
            let deadline = Date().addingTimeInterval(60)
            while p.poll() == nil, Date() < deadline, (try leftovers()).isEmpty { usleep(200) }
            guard p.poll() == nil, !(try leftovers()).isEmpty else {
                _ = p.wait()
                try? FileManager.default.removeItem(atPath: out)
                elements *= 4
                continue
            }
            kill(p.pid, SIGSTOP)
            XCTAssertEqual(truncate(input, 4096), 0)
            kill(p.pid, SIGCONT)
            let r = p.wait()
            caught = true
            XCTAssertEqual(r.status, 1, "status \(r.status) (minus a signal number if killed): \(r.stderr)")
            XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains("shrinking.safetensors") && r.stderr.contains("shrank while it was being read"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
            XCTAssertEqual(try leftovers(), [])
        }
        XCTAssertTrue(caught, "never caught a convert in progress")
    }

    // MARK: 18. long output names

    /// Output names up to NAME_MAX bytes (ASCII and multi-byte) convert; the temporary name stays within 255 bytes.
    func testLongOutputNames() throws {
        let input = fixture("escapes.safetensors")
        for name in [String(repeating: "a", count: 247) + ".st", String(repeating: "b", count: 255),
                     String(repeating: "é", count: 120) + ".safetensors"] {
            XCTAssertLessThanOrEqual(name.utf8.count, 255)
            let out = tmp.appendingPathComponent(name).path
            let r = try CLI.run(["convert", input, "-o", out])
            XCTAssertEqual(r.status, 0, "\(name.utf8.count) bytes: \(r.stderr)")
            XCTAssertTrue(FileManager.default.fileExists(atPath: out))
            let temp = AtomicOutput.temporaryName(for: name)
            XCTAssertLessThanOrEqual(temp.utf8.count, 255)
            XCTAssertTrue(temp.hasPrefix(".") && temp.contains(".partial-"), temp)
        }
        XCTAssertEqual(try leftovers(), [])
    }

    // MARK: 20. neutralised pickle globals

    /// A payload beside real tensors: inspect and convert succeed but name the neutralised global on stderr;
    /// `--strict` refuses the file. A pickled whole module (torch.nn classes only) gets a note, not a warning.
    func testNeutralisedGlobalsAreReportedAndStrictRefuses() throws {
        for file in ["payload_beside_tensors_zip.pth", "payload_beside_tensors_legacy.pth"] {
            let input = fixture(file)
            let before = try Data(contentsOf: URL(fileURLWithPath: input))
            let inspect = try CLI.run(["inspect", input])
            XCTAssertEqual(inspect.status, 0, inspect.stderr)
            XCTAssertEqual(inspect.stderrLines.count, 1, inspect.stderr)
            XCTAssertTrue(inspect.stderr.hasPrefix("warning: ") && inspect.stderr.contains("posix.system (os.system)")
                          && inspect.stderr.contains(file), inspect.stderr)
            XCTAssertTrue(inspect.stdout.contains("weight"), inspect.stdout)

            let out = tmp.appendingPathComponent(file + ".safetensors").path
            let convert = try CLI.run(["convert", input, "-o", out])
            XCTAssertEqual(convert.status, 0, convert.stderr)
            XCTAssertEqual(convert.stderrLines.count, 1, convert.stderr)
            XCTAssertTrue(convert.stderr.contains("posix.system"), convert.stderr)
            XCTAssertEqual(Set(try Checkpoint.open(out).names), ["weight", "bias"])

            for args in [["inspect", input, "--strict"], ["convert", input, "-o", out + "2", "--strict"]] {
                let r = try CLI.run(args)
                XCTAssertEqual(r.status, 1, "\(args)")
                XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
                XCTAssertTrue(r.stderr.hasPrefix("error: ") && r.stderr.contains("posix.system") && r.stderr.contains("strict"), r.stderr)
                XCTAssertEqual(r.stdout, "")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out + "2"))
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: input)), before, "input modified")
        }
        let module = try CLI.run(["inspect", CLIFixtures.checkpoints + "/torch/module_sequential_zip.pth"])
        XCTAssertEqual(module.status, 0)
        XCTAssertTrue(module.stderr.hasPrefix("note: ") && module.stderr.contains("torch.nn.modules.conv.Conv2d"), module.stderr)
        let plain = try CLI.run(["inspect", CLIFixtures.checkpoints + "/torch/training_zip.pth", "--strict"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(plain.stderr, "")
    }

    // MARK: helpers

    private func fixture(_ name: String) -> String { CLIFixtures.own + "/" + name }

    private func copyFixture(_ path: String, as name: String) throws -> String {
        let dst = tmp.appendingPathComponent(name).path
        try FileManager.default.copyItem(atPath: path, toPath: dst)
        return dst
    }

    private func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.contains(".partial-") }
    }

    private func writeSafetensors(_ path: String, _ tensors: [(String, Tensor)], metadata: [String: String] = [:]) throws {
        try? FileManager.default.removeItem(atPath: path)
        let sd = StateDict(format: .safetensors, file: "", tensors: tensors.map { TensorEntry(name: $0.0, tensor: $0.1) })
        let out = try AtomicOutput(destination: path)
        try SafetensorsWriter.write(sd, to: out, dtype: nil, metadata: metadata)
        try out.commit()
    }

    private static func assertNoControlBytes(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let bad = text.unicodeScalars.filter { ($0.value < 0x20 && $0 != "\n") || (0x7F..<0xA0).contains($0.value) || (0x202A...0x202E).contains($0.value) }
        XCTAssertTrue(bad.isEmpty, "\(what) holds control characters \(bad.map { String($0.value, radix: 16) }): \(text.debugDescription)",
                      file: file, line: line)
    }
}

enum CLIFixtures {
    static let own = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    static let checkpoints = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("CheckpointsTests/Fixtures").path
}

/// The `weights` binary started in the background (stdout/stderr to files), for signals and concurrency.
final class Spawned {
    let pid: pid_t
    private let dir: URL
    private var status: Int32?

    init(_ args: [String]) throws {
        guard let exe = CLI.binary else { throw XCTSkip("the weights binary was not found") }
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("weights-spawn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, dir.appendingPathComponent("stdout").path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, dir.appendingPathComponent("stderr").path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, nil, argv, environ)
        guard rc == 0 else { throw CheckpointError("cannot start \(exe): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    deinit { try? FileManager.default.removeItem(at: dir) }

    /// The exit status if the process has ended (minus the signal number if a signal ended it), else nil.
    func poll() -> Int32? {
        if let status { return status }
        var s: Int32 = 0
        guard waitpid(pid, &s, WNOHANG) == pid else { return nil }
        status = (s & 0x7F) == 0 ? (s >> 8) & 0xFF : -(s & 0x7F)
        return status
    }

    func wait() -> CLI.Result {
        while poll() == nil { usleep(1000) }
        func read(_ name: String) -> String { (try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)) ?? "" }
        return CLI.Result(status: status ?? -1, stdout: read("stdout"), stderr: read("stderr"), seconds: 0, maxRSS: 0, timedOut: false)
    }
}
