import Checkpoints
import Foundation
import TensorCore
import XCTest

/// Read each fixture → `SafetensorsWriter` (through `AtomicOutput`) → read back with `SafetensorsReader`: the same
/// tensors, bit for bit. Then, when a Python with `safetensors` is at hand, Tools/check_safetensors.py loads the
/// written files with Python's own reader and compares them with the fixtures' expected values.
final class RoundTripTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("weights-roundtrip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    func testTorchFixturesRoundTrip() throws {
        try roundTrip { $0.format.hasPrefix("pytorch") }
    }

    func testOtherFixturesRoundTrip() throws {
        try roundTrip { !$0.format.hasPrefix("pytorch") }
    }

    /// PyTorch fixtures → `HDF5Writer` → our HDF5 reader (bit for bit), then h5py (Tools/check_h5.py) when available.
    func testTorchFixturesRoundTripThroughHDF5() throws {
        let fixtures = try ExpectedFixture.all(in: Fixtures.root.path).filter { $0.format.hasPrefix("pytorch") && !$0.relativePath.hasPrefix("bad/") }
        XCTAssertFalse(fixtures.isEmpty)
        var written: [String] = []
        for fx in fixtures {
            let outPath = tmp.appendingPathComponent(fx.relativePath.replacingOccurrences(of: "/", with: "__") + ".h5").path
            do {
                let all = try Checkpoint.open(fx.path)
                let out = try AtomicOutput(destination: outPath)
                let skipped = try HDF5Writer.write(all, toPath: out.temporaryPath, dtype: nil, metadata: ["source_format": all.format.rawValue],
                                                   skipUnsupported: true)
                try out.commit()
                // Exactly the tensors HDF5 has no form for are left out; the rest must come back bit for bit.
                XCTAssertEqual(skipped.map(\.name), all.tensors.filter { !HDF5Writer.holds($0.dtype) }.map(\.name), fx.relativePath)
                var sd = all
                sd.tensors.removeAll { !HDF5Writer.holds($0.dtype) }
                let copy = try HDF5Reader.read(path: outPath)
                var problems: [String] = []
                if Set(copy.names) != Set(sd.names) { problems.append("names differ: \(Set(sd.names).symmetricDifference(copy.names).sorted().prefix(10))") }
                for t in sd.tensors {
                    guard let c = copy[t.name] else { continue }
                    let x = try t.load(), y = try c.load()
                    if (x.dtype, x.shape, x.bytes) != (y.dtype, y.shape, y.bytes) { problems.append("\(t.name): \(y.dtype.rawValue) \(y.shape) differs from \(x.dtype.rawValue) \(x.shape)") }
                }
                if problems.isEmpty { written += [outPath, fx.path + ".expected.json"] } else {
                    XCTFail("\(fx.relativePath) → h5 → back:\n    " + problems.joined(separator: "\n    "))
                }
            } catch {
                XCTFail("\(fx.relativePath) → h5 → back: \(error)")
            }
        }
        guard let python = Self.python(importing: "h5py, numpy") else {
            throw XCTSkip("no Python with h5py: the Swift-side HDF5 round trip ran; the cross-check with h5py did not")
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tools/check_h5.py").path
        let r = try Self.run(python, [script] + written)
        XCTAssertEqual(r.status, 0, "Tools/check_h5.py disagrees:\n\(r.output)")
    }

    private func roundTrip(_ select: (ExpectedFixture) -> Bool) throws {
        let fixtures = try ExpectedFixture.all(in: Fixtures.root.path).filter { !$0.relativePath.hasPrefix("bad/") && select($0) }
        XCTAssertFalse(fixtures.isEmpty)
        var written: [(out: String, expected: String)] = []
        for fx in fixtures {
            let outPath = tmp.appendingPathComponent(fx.relativePath.replacingOccurrences(of: "/", with: "__") + ".safetensors").path
            do {
                let all = try Checkpoint.open(fx.path)
                let out = try AtomicOutput(destination: outPath)
                let skipped = try SafetensorsWriter.write(all, to: out, dtype: nil, metadata: [
                    "source_file": (fx.path as NSString).lastPathComponent,
                    "source_format": all.format.rawValue,
                ], skipUnsupported: true)
                try out.commit()
                // Exactly the tensors safetensors has no form for (complex128) are left out.
                XCTAssertEqual(skipped.map(\.name), all.tensors.filter { !SafetensorsWriter.holds($0.dtype) }.map(\.name), fx.relativePath)
                var sd = all
                sd.tensors.removeAll { !SafetensorsWriter.holds($0.dtype) }
                let problems = try Self.compare(original: sd, copy: SafetensorsReader.read(path: outPath))
                if problems.isEmpty {
                    written.append((outPath, fx.path + ".expected.json"))
                } else {
                    XCTFail("\(fx.relativePath) → safetensors → back: \(problems.count) difference(s)\n    " + problems.joined(separator: "\n    "))
                }
            } catch {
                XCTFail("\(fx.relativePath) → safetensors → back: \(error)")
            }
        }
        try checkWithPython(written)
    }

    /// Same names (as a set: the safetensors reader orders by data offset), dtypes, shapes and bytes; the
    /// provenance metadata is carried.
    static func compare(original: StateDict, copy: StateDict) throws -> [String] {
        var problems: [String] = []
        if copy.format != .safetensors { problems.append("copy reads as \(copy.format.rawValue)") }
        let a = Set(original.names), b = Set(copy.names)
        if a != b {
            problems.append("names differ: only in original \(a.subtracting(b).sorted().prefix(10)), only in copy \(b.subtracting(a).sorted().prefix(10))")
        }
        for t in original.tensors {
            guard let c = copy[t.name] else { continue }
            let x = try t.load(), y = try c.load()
            if x.dtype != y.dtype { problems.append("\(t.name): dtype \(y.dtype.rawValue), was \(x.dtype.rawValue)") }
            if x.shape != y.shape { problems.append("\(t.name): shape \(y.shape), was \(x.shape)") }
            if x.bytes != y.bytes { problems.append("\(t.name): bytes differ") }
        }
        if !copy.metadata.contains(where: { $0.name == "source_format" && $0.value == .string(original.format.rawValue) }) {
            problems.append("__metadata__ lacks source_format = \(original.format.rawValue): \(copy.metadata.map(\.name))")
        }
        return problems
    }

    // MARK: - Python's safetensors as an independent reader

    private func checkWithPython(_ written: [(out: String, expected: String)]) throws {
        guard !written.isEmpty else { return }
        guard let python = Self.pythonWithSafetensors() else {
            throw XCTSkip("no Python with the safetensors package (tried $WEIGHTS_PYTHON, /work/venv/bin/python, python3): "
                          + "the Swift-side round trip ran; the cross-check with Python's reader did not")
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tools/check_safetensors.py").path
        let r = try Self.run(python, [script] + written.flatMap { [$0.out, $0.expected] })
        XCTAssertEqual(r.status, 0, "Tools/check_safetensors.py disagrees:\n\(r.output)")
    }

    static func pythonWithSafetensors() -> String? { python(importing: "safetensors") }

    /// A Python that can `import modules`: $WEIGHTS_PYTHON, /work/venv/bin/python, or python3 on PATH.
    static func python(importing modules: String) -> String? {
        var candidates: [String] = []
        if let p = ProcessInfo.processInfo.environment["WEIGHTS_PYTHON"] { candidates.append(p) }
        candidates.append("/work/venv/bin/python")
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            candidates.append("\(dir)/python3")
        }
        for c in candidates where FileManager.default.isExecutableFile(atPath: c) {
            if let r = try? run(c, ["-c", "import \(modules)"]), r.status == 0 { return c }
        }
        return nil
    }

    static func run(_ exe: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
