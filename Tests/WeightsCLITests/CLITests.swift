import Checkpoints
import Foundation
import TensorCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `weights` binary (it sits beside the test bundle in the build products folder) on the fixtures of
/// Tests/CheckpointsTests/Fixtures: exit codes, stdout/stderr shape, the files it writes, and — for the malformed
/// inputs — time and peak memory of each run.
final class CLITests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("weights-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    // MARK: inspect

    /// `inspect --json` of every valid fixture: format, tensor names/dtypes/shapes in order, metadata names.
    func testInspectJSONAgreesWithExpectedValues() throws {
        let fixtures = try expectedFixtures()
        XCTAssertGreaterThanOrEqual(fixtures.count, 25)
        for (path, expected) in fixtures {
            let name = (path as NSString).lastPathComponent
            let r = try CLI.run(["inspect", path, "--json"])
            guard r.status == 0 else { XCTFail("\(name): inspect exited \(r.status): \(r.stderr)"); continue }
            guard let doc = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
                XCTFail("\(name): stdout is not a JSON object"); continue
            }
            XCTAssertEqual(doc["format"] as? String, expected["format"] as? String, name)
            let got = (doc["tensors"] as? [[String: Any]] ?? []).map(Self.tensorSummary)
            let want = (expected["tensors"] as? [[String: Any]] ?? []).map(Self.tensorSummary)
            if expected["ordered"] as? Bool == true {
                XCTAssertEqual(got, want, "\(name): tensors")
            } else {
                XCTAssertEqual(got.sorted(), want.sorted(), "\(name): tensors")
            }
            let gotMeta = (doc["metadata"] as? [String: Any] ?? [:]).keys.sorted()
            let wantMeta = (expected["metadata"] as? [String: Any] ?? [:]).keys.sorted()
            XCTAssertEqual(gotMeta, wantMeta, "\(name): metadata names")
        }
    }

    /// Metadata values of a nested training checkpoint, and the totals.
    func testInspectJSONMetadataValues() throws {
        let path = fixture("torch/training_zip.pth")
        let r = try CLI.run(["inspect", path, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let expected = try XCTUnwrap(try loadExpected(path)["metadata"] as? [String: Any])
        let meta = try XCTUnwrap(doc["metadata"] as? [String: Any])
        XCTAssertEqual(meta.count, expected.count)
        for (k, v) in expected {
            XCTAssertTrue(Self.sameJSONScalar(meta[k], v), "metadata \(k): got \(String(describing: meta[k])), expected \(v)")
        }
        XCTAssertEqual(meta["arch"] as? String, "resnet")
        XCTAssertTrue(meta["flag"] is NSNull)
        let totals = try XCTUnwrap(doc["totals"] as? [String: Any])
        XCTAssertEqual((totals["tensors"] as? NSNumber)?.intValue, (doc["tensors"] as? [Any])?.count)
    }

    func testInspectKeySelectsSubtree() throws {
        let path = fixture("torch/training_zip.pth")
        let r = try CLI.run(["inspect", path, "--key", "state_dict", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let names = (doc["tensors"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        let want = (try loadExpected(path)["tensors"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            .filter { $0.hasPrefix("state_dict.") }.map { String($0.dropFirst("state_dict.".count)) }
        XCTAssertEqual(names, want)
        XCTAssertTrue(names.contains("layer1.0.conv1.weight"), "\(names)")

        let bad = try CLI.run(["inspect", path, "--key", "no_such_key"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderrLines.count, 1, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("no_such_key"), bad.stderr)
    }

    func testInspectTable() throws {
        let r = try CLI.run(["inspect", fixture("torch/demo_resnet_legacy.pth")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("format: pytorch-legacy"), r.stdout)
        XCTAssertTrue(r.stdout.contains("layer1.0.conv1.weight"), r.stdout)
        XCTAssertTrue(r.stdout.contains("fc.weight"), r.stdout)
        XCTAssertEqual(r.stderr, "")
    }

    // MARK: convert

    func testConvertWritesBesideInputByDefault() throws {
        let input = try copyFixture("torch/demo_resnet_legacy.pth", as: "demo.pth")
        let r = try CLI.run(["convert", input])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = tmp.appendingPathComponent("demo.safetensors").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: out), "no \(out); stdout: \(r.stdout)")
        XCTAssertTrue(r.stdout.contains("demo.safetensors"), r.stdout)
        try assertSameTensors(input, out)
        let sd = try Checkpoint.open(out)
        XCTAssertEqual(sd.format, .safetensors)
        XCTAssertTrue(sd.metadata.contains { $0.name == "source_format" && $0.value == .string("pytorch-legacy") },
                      "provenance missing: \(sd.metadata.map(\.name))")
        XCTAssertEqual(try leftovers(), [], "temporary files left behind")
    }

    func testConvertRefusesToOverwriteWithoutForce() throws {
        let input = try copyFixture("torch/training_zip.pth", as: "ckpt.pth")
        let out = tmp.appendingPathComponent("ckpt.safetensors").path
        try Data("precious".utf8).write(to: URL(fileURLWithPath: out))
        let r = try CLI.run(["convert", input])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("--force"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "precious", "existing output was touched")

        let forced = try CLI.run(["convert", input, "--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        try assertSameTensors(input, out)
    }

    func testConvertNeverWritesOverItsInput() throws {
        let input = try copyFixture("torch/training_zip.pth", as: "same.pth")
        let before = try Data(contentsOf: URL(fileURLWithPath: input))
        for args in [["convert", input, "-o", input],
                     ["convert", input, "-o", input, "--force"],
                     ["convert", input, "-o", tmp.path + "/./same.pth", "--force"]] {
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, 1, "\(args): \(r.stdout)")
            XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: input)), before, "\(args) changed the input")
        }
        XCTAssertEqual(try leftovers(), [])
    }

    func testConvertDTypeFloat16CastsOnlyFloatingTensors() throws {
        let input = fixture("torch/dtypes_views_zip_p2.pth")
        let out = tmp.appendingPathComponent("half.safetensors").path
        let r = try CLI.run(["convert", input, "-o", out, "--dtype", "float16"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let src = try Checkpoint.open(input)
        let dst = try Checkpoint.open(out)
        XCTAssertEqual(Set(src.names), Set(dst.names))
        for t in src.tensors {
            guard let c = dst[t.name] else { continue }
            let x = try t.load(), y = try c.load()
            XCTAssertEqual(y.shape, x.shape, t.name)
            if x.dtype.isFloatingPoint {
                XCTAssertEqual(y.dtype, .float16, t.name)
                XCTAssertEqual(y.bytes, x.converted(to: .float16).bytes, "\(t.name): not the float16 rounding of the \(x.dtype.rawValue) values")
            } else {
                XCTAssertEqual(y.dtype, x.dtype, "\(t.name) must keep its dtype")
                XCTAssertEqual(y.bytes, x.bytes, t.name)
            }
        }
    }

    func testConvertToH5() throws {
        let input = try copyFixture("torch/training_zip.pth", as: "train.pth")
        let r = try CLI.run(["convert", input, "--to", "h5"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = tmp.appendingPathComponent("train.h5").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try Checkpoint.sniff(out), .hdf5)
        try assertSameTensors(input, out)
        if let python = CLI.python(with: "h5py") {
            let count = try Checkpoint.open(input).tensors.count
            let py = try CLI.run(["-c", "import h5py,sys\nf=h5py.File(sys.argv[1],'r')\nn=[]\nf.visititems(lambda k,o: n.append(k) if isinstance(o,h5py.Dataset) else None)\nprint(len(n))", out],
                                 executable: python)
            XCTAssertEqual(py.status, 0, py.stderr)
            XCTAssertEqual(py.stdout.trimmingCharacters(in: .whitespacesAndNewlines), String(count), "datasets h5py sees")
        }
    }

    // MARK: errors

    func testUsageErrorsExit64() throws {
        let input = fixture("torch/training_zip.pth")
        for args in [["inspect", input, "--no-such-option"], ["convert"], ["convert", input, "--to", "onnx"],
                     ["convert", input, "--dtype", "int8"], ["frobnicate"]] {
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, 64, "\(args): stderr \(r.stderr)")
            XCTAssertFalse(r.stderr.isEmpty, "\(args): usage errors explain themselves")
        }
    }

    func testBadFileExitsOneWithOneLine() throws {
        let path = fixture("bad/random.bin")
        let r = try CLI.run(["inspect", path])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("random.bin"), r.stderr)
        XCTAssertEqual(r.stdout, "")
    }

    /// The malformed-input table of Fixtures/bad/EXPECTED.json through `weights convert` (which reads every tensor):
    /// exit 1, exactly one line on stderr naming the file and the fragment, no output file, within a few seconds
    /// and ~256 MiB.
    func testMalformedInputsThroughTheBinary() throws {
        let table = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture("bad/EXPECTED.json"))))
            as? [String: Any])
        let cases = try XCTUnwrap(table["cases"] as? [[String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 30)
        let out = tmp.appendingPathComponent("out.safetensors").path
        var slowest = (0.0, ""), largest = (0, "")
        for c in cases {
            let file = try XCTUnwrap(c["file"] as? String)
            let fragments = [c["fragment"] as? String ?? "?"] + (c["also"] as? [String] ?? [])
            let r = try CLI.run(["convert", fixture("bad/" + file), "-o", out], timeout: 30)
            XCTAssertFalse(r.timedOut, "\(file): still running after 30 s (killed)")
            XCTAssertEqual(r.status, 1, "\(file): exit status \(r.status); stderr: \(r.stderr)")
            XCTAssertEqual(r.stderrLines.count, 1, "\(file): stderr is not one line: \(r.stderr.debugDescription)")
            XCTAssertTrue(r.stderr.contains(file), "\(file): stderr does not name the file: \(r.stderr)")
            for f in fragments {
                XCTAssertTrue(r.stderr.lowercased().contains(f.lowercased()), "\(file): stderr lacks '\(f)': \(r.stderr)")
            }
            XCTAssertLessThan(r.cpuSeconds, 10, "\(file): used \(r.cpuSeconds) s of CPU")
            XCTAssertLessThan(r.seconds, 25, "\(file): took \(r.seconds) s")
            XCTAssertLessThanOrEqual(r.maxRSS, 256 << 20, "\(file): peak RSS \(r.maxRSS >> 20) MiB")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(file): an output file was left")
            if r.seconds > slowest.0 { slowest = (r.seconds, file) }
            if r.maxRSS > largest.0 { largest = (r.maxRSS, file) }
        }
        XCTAssertEqual(try leftovers(), [], "temporary files left behind")
        print("malformed inputs: slowest \(slowest.1) \(String(format: "%.2f", slowest.0)) s, largest peak RSS \(largest.1) \(largest.0 >> 20) MiB")
    }

    /// A corrupt HDF5 file (found by the fuzzer) on which libhdf5 1.10 loops forever while reading its structure:
    /// the isolated walk's time limit ends it with one line, and WEIGHTS_HDF5_TIME_LIMIT sets that limit.
    func testHDF5SpinEndsAtTheTimeLimit() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/hdf5_spin.h5").path
        let r = try CLI.run(["inspect", file], timeout: 60, environment: ["WEIGHTS_HDF5_TIME_LIMIT": "2"])
        XCTAssertFalse(r.timedOut)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderrLines.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("hdf5_spin.h5") && r.stderr.contains("did not finish within 2 s"), r.stderr)
        XCTAssertLessThan(r.seconds, 25)
    }

    // MARK: helpers

    private static let fixturesRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("CheckpointsTests/Fixtures").path

    private func fixture(_ rel: String) -> String { Self.fixturesRoot + "/" + rel }

    private func copyFixture(_ rel: String, as name: String) throws -> String {
        let dst = tmp.appendingPathComponent(name).path
        try FileManager.default.copyItem(atPath: fixture(rel), toPath: dst)
        return dst
    }

    private func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { $0.contains(".partial-") }
    }

    private func loadExpected(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path + ".expected.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private func expectedFixtures() throws -> [(String, [String: Any])] {
        var out: [(String, [String: Any])] = []
        for sub in ["torch", "hdf5", "numpy", "safetensors", "realfiles"] {
            for f in try FileManager.default.contentsOfDirectory(atPath: fixture(sub)).sorted() where f.hasSuffix(".expected.json") {
                let path = fixture(sub + "/" + String(f.dropLast(".expected.json".count)))
                out.append((path, try loadExpected(path)))
            }
        }
        return out
    }

    private static func tensorSummary(_ t: [String: Any]) -> String {
        let shape = (t["shape"] as? [Any] ?? []).map { "\($0)" }.joined(separator: ",")
        return "\(t["name"] as? String ?? "?") \(t["dtype"] as? String ?? "?") [\(shape)]"
    }

    /// Loose equality of JSON scalars from two JSONSerialization parses (types are checked exactly in FixtureTests).
    private static func sameJSONScalar(_ a: Any?, _ b: Any) -> Bool {
        switch (a, b) {
        case (is NSNull, is NSNull): return true
        case (let x as String, let y as String): return x == y
        case (let x as NSNumber, let y as NSNumber): return x.doubleValue == y.doubleValue
        default: return false
        }
    }

    private func assertSameTensors(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try Checkpoint.open(a), y = try Checkpoint.open(b)
        XCTAssertEqual(Set(x.names), Set(y.names), file: file, line: line)
        for t in x.tensors {
            guard let u = y[t.name] else { continue }
            let p = try t.load(), q = try u.load()
            XCTAssertEqual(p.dtype, q.dtype, t.name, file: file, line: line)
            XCTAssertEqual(p.shape, q.shape, t.name, file: file, line: line)
            XCTAssertEqual(p.bytes, q.bytes, t.name, file: file, line: line)
        }
    }
}

/// Runs the `weights` binary (or another program) with posix_spawn, capturing stdout/stderr, wall time and peak RSS.
enum CLI {
    struct Result {
        /// Exit code, or minus the signal number when killed by a signal.
        let status: Int32
        let stdout: String
        let stderr: String
        let seconds: Double
        /// Peak resident set size in bytes.
        let maxRSS: Int
        let timedOut: Bool
        /// User + system CPU time of the process (and of children it waited for). Work bounds are checked on this,
        /// not on wall time, which a loaded machine stretches arbitrarily.
        var cpuSeconds: Double = 0

        var stderrLines: [Substring] { stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast(stderr.hasSuffix("\n") ? 1 : 0) }
    }

    /// The `weights` executable in the same build products folder as this test bundle ($WEIGHTS_BINARY overrides).
    static let binary: String? = {
        if let p = ProcessInfo.processInfo.environment["WEIGHTS_BINARY"] { return p }
        var dirs: [URL] = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
                           Bundle.module.bundleURL.deletingLastPathComponent()]
        if let exe = Bundle.main.executableURL { dirs.append(exe.deletingLastPathComponent()) }
        dirs += Bundle.allBundles.map { $0.bundleURL.deletingLastPathComponent() }
        for d in dirs {
            let c = d.appendingPathComponent("weights").path
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: c, isDirectory: &isDir), !isDir.boolValue,
               FileManager.default.isExecutableFile(atPath: c) {
                return c
            }
        }
        return nil
    }()

    static func run(_ args: [String], executable: String? = nil, timeout: Double = 120,
                    environment extra: [String: String] = [:]) throws -> Result {
        guard let exe = executable ?? binary else {
            throw XCTSkip("the weights binary was not found beside the test bundle (build it with swift build --build-tests, or set WEIGHTS_BINARY)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weights-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outPath = dir.appendingPathComponent("stdout").path, errPath = dir.appendingPathComponent("stderr").path

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let env = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in envp { free(p) } }

        let start = Date()
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, nil, argv, envp)
        guard rc == 0 else { throw CheckpointError("cannot start \(exe): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        var usage = rusage()
        var timedOut = false
        while true {
            let r = wait4(pid, &status, WNOHANG, &usage)
            if r == pid { break }
            if r < 0 && errno != EINTR { throw CheckpointError("wait4 failed: \(String(cString: strerror(errno)))") }
            if Date().timeIntervalSince(start) > timeout && !timedOut {
                kill(pid, SIGKILL)
                timedOut = true
            }
            usleep(2000)
        }
        let seconds = Date().timeIntervalSince(start)
        let code: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : -(status & 0x7F)
        func read(_ p: String) -> String { (try? String(contentsOfFile: p, encoding: .utf8)) ?? "" }
        return Result(status: code, stdout: read(outPath), stderr: read(errPath), seconds: seconds,
                      maxRSS: Int(usage.ru_maxrss) * 1024, timedOut: timedOut,
                      cpuSeconds: Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
                          + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6)
    }

    /// A Python that can import `module` ($WEIGHTS_PYTHON, /work/venv/bin/python, python3 on PATH), if any.
    static func python(with module: String) -> String? {
        var candidates: [String] = []
        if let p = ProcessInfo.processInfo.environment["WEIGHTS_PYTHON"] { candidates.append(p) }
        candidates.append("/work/venv/bin/python")
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") { candidates.append("\(dir)/python3") }
        for c in candidates where FileManager.default.isExecutableFile(atPath: c) {
            if let r = try? run(["-c", "import \(module)"], executable: c), r.status == 0 { return c }
        }
        return nil
    }
}
