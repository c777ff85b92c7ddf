@testable import Checkpoints
import Foundation
import TensorCore
import XCTest

/// Keras 3 `.keras` archives (issue 10), written by Keras itself (Tools/make_keras_fixtures.py). The generic fixture
/// comparison checks their values against Keras; these tests check that the archive and the same model's
/// `save_weights("x.weights.h5")` agree, and that hostile archives are refused naming the member.
final class KerasArchiveTests: TemporaryDirectoryTestCase {
    func fixture(_ name: String) -> String { Fixtures.path("keras/" + name) }

    /// Same names, order, dtypes, shapes and bytes as the `.weights.h5`, whether the member is stored or deflated.
    func testArchiveReadsLikeItsWeightsFile() throws {
        let weights = try Checkpoint.open(fixture("tiny.weights.h5"))
        XCTAssertEqual(weights.format, .hdf5)
        for name in ["tiny.keras", "tiny_deflated.keras"] {
            let archive = try Checkpoint.open(fixture(name))
            XCTAssertEqual(archive.format, .keras, name)
            XCTAssertEqual(archive.names, weights.names, name)
            XCTAssertEqual(archive.names.count, 10, name)
            for (a, w) in zip(archive.tensors, weights.tensors) {
                XCTAssertEqual(a.dtype, w.dtype, "\(name) \(a.name)")
                XCTAssertEqual(a.shape, w.shape, "\(name) \(a.name)")
                XCTAssertEqual(try a.load().bytes, try w.load().bytes, "\(name) \(a.name)")
            }
            let meta = Dictionary(archive.metadata.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
            guard case .string(let config)? = meta["keras_config"], case .string(let info)? = meta["keras_metadata"] else {
                return XCTFail("\(name): keras_config / keras_metadata missing: \(archive.metadata.map(\.name))")
            }
            XCTAssertTrue(config.contains("\"class_name\": \"Functional\""), config)
            XCTAssertTrue(info.contains("\"keras_version\": \"3."), info)
            XCTAssertEqual(meta["keras_layout"], .string("keras3-weights-h5"))
        }
    }

    /// Sniffed by content: a renamed archive is still read as one.
    func testSniffedByContentNotName() throws {
        let copy = path("weights.zip")
        try FileManager.default.copyItem(atPath: fixture("tiny.keras"), toPath: copy)
        XCTAssertEqual(try Checkpoint.sniff(copy), .keras)
        XCTAssertEqual(try Checkpoint.open(copy).names.first, "batch_normalization.0")
    }

    /// A stored member is read in place: contiguous datasets are spans of the archive (copied file-to-file by the
    /// writers) holding exactly the loaded bytes; a deflated member has none.
    func testStoredMemberDatasetsAreSpansOfTheArchive() throws {
        let sd = try Checkpoint.open(fixture("tiny.keras"))
        let raw = try Data(contentsOf: URL(fileURLWithPath: fixture("tiny.keras")))
        var spans = 0
        for t in sd.tensors {
            guard let s = t.span else { continue }
            spans += 1
            XCTAssertEqual(s.file.path, fixture("tiny.keras"))
            XCTAssertEqual(Array(raw[s.offset..<(s.offset + s.count)]), try t.load().bytes, t.name)
        }
        XCTAssertEqual(spans, sd.tensors.count)
        XCTAssertTrue(try Checkpoint.open(fixture("tiny_deflated.keras")).tensors.allSatisfy { $0.span == nil })
    }

    /// Hostile archives: each is one error naming the archive and the member, and what is wrong.
    func testHostileArchivesAreRefusedNamingTheMember() {
        let cases: [(String, [String])] = [
            ("hostile_external.keras", ["member 'model.weights.h5'", "external storage", "/etc/passwd"]),
            ("hostile_extlink.keras", ["member 'model.weights.h5'", "external link", "/etc/passwd.h5"]),
            ("hostile_vds.keras", ["member 'model.weights.h5'", "virtual dataset", "other.h5"]),
            ("hostile_truncated.keras", ["member 'model.weights.h5'", "truncated"]),
            ("hostile_bomb.keras", ["member 'model.weights.h5'", "zip bomb"]),
            ("hostile_bomb_lying.keras", ["member 'model.weights.h5'", "expands beyond the declared 4096 bytes"]),
            ("ambiguous_pkl.keras", ["member 'archive/data.pkl'", "ambiguous zip archive"]),
            ("npz_weights.keras", ["member 'model.weights.npz'", "weights_format"]),
            ("no_weights.keras", ["holds no model.weights.h5"]),
        ]
        for (file, fragments) in cases {
            XCTAssertThrowsError(try Checkpoint.open(fixture(file)), file) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix(fixture(file) + ": "), text)
                XCTAssertFalse(text.contains("\n"), text)
                for f in fragments { XCTAssertTrue(text.contains(f), "\(file): '\(text)' lacks '\(f)'") }
            }
        }
    }

    /// A weights member larger than the output cap is refused before it is read.
    func testMemberBeyondTheOutputCapIsRefused() {
        XCTAssertThrowsError(try Checkpoint.open(fixture("tiny.keras"), options: ReadOptions(maxOutputBytes: 4096))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("member 'model.weights.h5'") && text.contains("output cap"), text)
        }
    }

    /// A flipped byte inside the stored inner HDF5 file is caught by the member's CRC-32 before libhdf5 reads it.
    func testAlteredStoredMemberFailsItsCRC() throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("tiny.keras"))))
        let zip = try ZipArchive(path: fixture("tiny.keras"))
        let m = try XCTUnwrap(zip.member(named: "model.weights.h5"))
        bytes[m.dataOffset + m.size - 100] ^= 0x40
        let p = path("altered.keras")
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try Checkpoint.open(p)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("member 'model.weights.h5'") && text.contains("bad CRC-32"), text)
        }
    }

    /// The inner file is opened in the HDF5 child process, which serves the loads (libhdf5 never runs in ours).
    func testInnerFileIsReadInTheIsolatedChild() throws {
        guard !H5Isolation.inProcess else { throw XCTSkip("WEIGHTS_HDF5_IN_PROCESS is set") }
        let zip = try ZipArchive(path: fixture("tiny.keras"))
        let m = try XCTUnwrap(zip.member(named: "model.weights.h5"))
        let image = try H5Image(member: m.name, mapping: MappedFile(path: fixture("tiny.keras")), offset: m.dataOffset, count: m.size)
        let (walk, server) = try H5Isolation.walk(source: H5Source(path: fixture("tiny.keras"), image: image))
        let server_ = try XCTUnwrap(server)
        XCTAssertNotEqual(server_.childPID, getpid())
        let d = try XCTUnwrap(walk.datasets.first { $0.hdfPath == "/layers/conv2d/vars/0" })
        let weights = try Checkpoint.open(fixture("tiny.weights.h5"))
        XCTAssertEqual(try server_.load(d).bytes, try weights["conv2d.0"]?.load().bytes)
    }

    /// An image that is not an HDF5 file at byte 0 (a user block inside the member) is refused before libhdf5 sees it.
    func testImageMustStartWithTheSignature() throws {
        let image = H5Image(member: "model.weights.h5", copying: [UInt8](repeating: 0, count: 512) + Checkpoint.hdf5Signature)
        XCTAssertThrowsError(try H5.locked { try H5File(source: H5Source(path: "x.keras", image: image)) }) { error in
            XCTAssertTrue("\(error)".contains("does not start with the HDF5 signature"), "\(error)")
        }
    }
    /// Corrupt inner images (bytes flipped past the CRC check, as a crafted archive with matching CRCs would have them)
    /// reach libhdf5 only in the child: each gives an error line naming the member, or reads; never a crash here.
    func testByteFlippedInnerImagesNeverCrashTheCaller() throws {
        let zip = try ZipArchive(path: fixture("tiny.keras"))
        let m = try XCTUnwrap(zip.member(named: "model.weights.h5"))
        let inner = try zip.read(m)
        var rng = SystemRandomNumberGenerator()
        for round in 0..<16 {
            var data = inner
            for _ in 0..<(1 + round % 6) {
                data[Int.random(in: 8..<data.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            let source = H5Source(path: fixture("tiny.keras"), image: H5Image(member: m.name, copying: data))
            do {
                let sd = try HDF5Reader.read(source, format: .keras, spans: nil)
                for t in sd.tensors { _ = try? t.load() }
            } catch let e as CheckpointError {
                XCTAssertFalse(e.description.contains("\n"), e.description)
                XCTAssertEqual(e.member, "model.weights.h5", e.description)
            }
        }
    }
}
