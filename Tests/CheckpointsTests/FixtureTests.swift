import Checkpoints
import Foundation
import TensorCore
import XCTest

/// Every valid fixture written by Tools/make_fixtures.py, opened with `Checkpoint.open` and compared with its
/// `.expected.json` exactly: format, tensor names (as an ordered list where the order is defined, else as a set),
/// dtypes, shapes, the bytes of `load()`, and metadata (names, types and values).
final class FixtureTests: XCTestCase {
    /// The fixture families; each fixture belongs to exactly one (checked by `testEveryFixtureIsCovered`).
    static let families: [(name: String, matches: @Sendable (ExpectedFixture) -> Bool)] = [
        ("pytorch-zip", { $0.format == "pytorch-zip" }),
        ("pytorch-legacy", { $0.format == "pytorch-legacy" }),
        ("safetensors", { $0.format == "safetensors" }),
        ("hdf5", { $0.format == "hdf5" && !$0.relativePath.contains("keras") }),
        ("keras", { $0.format == "keras" || ($0.format == "hdf5" && $0.relativePath.contains("keras")) }),
        ("npy", { $0.format == "npy" }),
        ("npz", { $0.format == "npz" }),
    ]

    func testPyTorchZip() throws { try checkFamily("pytorch-zip", atLeast: 8) }
    func testPyTorchLegacy() throws { try checkFamily("pytorch-legacy", atLeast: 5) }
    func testSafetensors() throws { try checkFamily("safetensors", atLeast: 2) }
    func testHDF5() throws { try checkFamily("hdf5", atLeast: 1) }
    func testKerasLayouts() throws { try checkFamily("keras", atLeast: 6) }
    func testNPY() throws { try checkFamily("npy", atLeast: 6) }
    func testNPZ() throws { try checkFamily("npz", atLeast: 3) }

    /// Every data file in the valid-fixture folders has expected values, and every expected file one family.
    func testEveryFixtureIsCovered() throws {
        let root = Fixtures.root.path
        let all = try ExpectedFixture.all(in: root).filter { !$0.relativePath.hasPrefix("bad/") }
        XCTAssertGreaterThanOrEqual(all.count, 25)
        for fx in all {
            let n = Self.families.filter { $0.matches(fx) }.count
            XCTAssertEqual(n, 1, "\(fx.relativePath) (format \(fx.format)) belongs to \(n) fixture families")
            XCTAssertTrue(FileManager.default.fileExists(atPath: fx.path), "\(fx.relativePath): data file missing")
        }
        let fm = FileManager.default
        for sub in ["torch", "hdf5", "numpy", "safetensors"] {
            let files = try fm.contentsOfDirectory(atPath: root + "/" + sub)
            for f in files where !f.hasSuffix(".expected.json") {
                XCTAssertTrue(files.contains(f + ".expected.json"), "\(sub)/\(f) has no expected values")
            }
        }
    }

    // MARK: - comparison

    private func checkFamily(_ family: String, atLeast minimum: Int) throws {
        let matches = Self.families.first { $0.name == family }!.matches
        let fixtures = try ExpectedFixture.all(in: Fixtures.root.path).filter { !$0.relativePath.hasPrefix("bad/") && matches($0) }
        XCTAssertGreaterThanOrEqual(fixtures.count, minimum, "fixtures of family \(family)")
        for fx in fixtures {
            let problems = Self.compare(fx)
            if !problems.isEmpty {
                XCTFail("\(fx.relativePath): \(problems.count) mismatch(es)\n    " + problems.joined(separator: "\n    "))
            }
        }
    }

    /// All differences between what the readers give for `fx.path` and its expected values (empty: identical).
    static func compare(_ fx: ExpectedFixture) -> [String] {
        var problems: [String] = []
        let sd: StateDict
        do {
            sd = try Checkpoint.open(fx.path)
        } catch {
            return ["open failed: \(error)"]
        }
        if sd.format.rawValue != fx.format {
            problems.append("format: got \(sd.format.rawValue), expected \(fx.format)")
        }

        // Names.
        let got = sd.names
        let want = fx.tensors.map(\.name)
        let gotSet = Set(got), wantSet = Set(want)
        if gotSet.count != got.count {
            let dups = Dictionary(grouping: got, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted()
            problems.append("duplicate tensor names: \(dups)")
        }
        let missing = want.filter { !gotSet.contains($0) }
        let extra = got.filter { !wantSet.contains($0) }
        if !missing.isEmpty { problems.append("missing tensors (\(missing.count)): \(missing.prefix(20))") }
        if !extra.isEmpty { problems.append("unexpected tensors (\(extra.count)): \(extra.prefix(20))") }
        if fx.ordered, missing.isEmpty, extra.isEmpty, got != want,
           let i = zip(got, want).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            problems.append("tensor order differs at #\(i): got '\(got[i])', expected '\(want[i])' (order is defined for this file)")
        }

        // Dtype, shape and values of each tensor.
        for spec in fx.tensors {
            guard let entry = sd[spec.name] else { continue }
            if entry.dtype.rawValue != spec.dtype { problems.append("\(spec.name): dtype \(entry.dtype.rawValue), expected \(spec.dtype)") }
            if entry.shape != spec.shape { problems.append("\(spec.name): shape \(entry.shape), expected \(spec.shape)") }
            let t: Tensor
            do {
                t = try entry.load()
            } catch {
                problems.append("\(spec.name): load failed: \(error)")
                continue
            }
            if t.dtype != entry.dtype || t.shape != entry.shape {
                problems.append("\(spec.name): loaded \(t.dtype.rawValue) \(t.shape) but the entry says \(entry.dtype.rawValue) \(entry.shape)")
            }
            if let p = compareBytes(t.bytes, spec, elementSize: DType(rawValue: spec.dtype)?.byteSize ?? 1) {
                problems.append("\(spec.name): \(p)")
            }
        }

        // Metadata: same names, same types, same values.
        var gotMeta: [String: MetaValue] = [:]
        for m in sd.metadata {
            if gotMeta[m.name] != nil { problems.append("metadata: duplicate name '\(m.name)'") }
            gotMeta[m.name] = m.value
        }
        let wantMeta = Dictionary(fx.metadata, uniquingKeysWith: { a, _ in a })
        for (name, want) in fx.metadata {
            guard let v = gotMeta[name] else { problems.append("metadata: missing '\(name)' = \(want)"); continue }
            if !metaMatches(v, want) { problems.append("metadata '\(name)': got \(metaDescription(v)), expected \(want)") }
        }
        for m in sd.metadata where wantMeta[m.name] == nil {
            problems.append("metadata: unexpected '\(m.name)' = \(metaDescription(m.value))")
        }
        return problems
    }

    static func compareBytes(_ bytes: [UInt8], _ spec: ExpectedFixture.TensorSpec, elementSize: Int) -> String? {
        if let hex = spec.hex {
            let got = hexString(bytes)
            if got == hex { return nil }
            let want = Array(hex.utf8)
            let g = Array(got.utf8)
            let firstDiff = zip(g, want).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(g.count, want.count)
            let byte = firstDiff / 2
            let el = byte / max(elementSize, 1)
            let lo = el * elementSize * 2
            func slice(_ a: [UInt8]) -> String {
                lo < a.count ? String(decoding: a[lo..<min(a.count, lo + 2 * elementSize * 4)], as: UTF8.self) : "<end>"
            }
            return "bytes differ (\(bytes.count) bytes, expected \(want.count / 2)); first difference in element \(el) "
                + "(byte \(byte)): got \(slice(g)) expected \(slice(want))"
        }
        guard let sha = spec.sha256 else { return "expected values carry neither hex nor sha256" }
        let got = SHA256.hex(bytes)
        if got == sha { return nil }
        return "sha256 of \(bytes.count) bytes is \(got), expected \(sha); first bytes \(hexString(bytes.prefix(32))), "
            + "expected \(spec.headHex ?? "?")"
    }
}
