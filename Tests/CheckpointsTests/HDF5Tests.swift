@testable import Checkpoints
import Foundation
import TensorCore
import XCTest

final class HDF5Tests: TemporaryDirectoryTestCase {
    func writeH5(_ tensors: [(String, Tensor)], _ name: String, dtype: DType? = nil,
                 metadata: [String: String] = [:], progress: ((Int) -> Void)? = nil) throws -> String {
        let p = path(name)
        let out = try AtomicOutput(destination: p)
        try HDF5Writer.write(SampleTensors.stateDict(tensors), toPath: out.temporaryPath, dtype: dtype, metadata: metadata, progress: progress)
        try out.commit()
        return p
    }

    func testRoundTripOfEveryDTypeKeepsNamesOrderAndBytes() throws {
        // Deliberately not in name order: the writer tracks creation order and the reader follows it.
        let tensors = SampleTensors.all(holds: HDF5Writer.holds).reversed() + [("layer1.0.conv1.weight", Tensor(shape: [2, 1, 1, 1], floats: [1, -1]))]
        var progress: [Int] = []
        let p = try writeH5(Array(tensors), "all.h5", metadata: ["source_format": "pytorch-zip", "note": "ü \"quoted\""]) { progress.append($0) }
        XCTAssertEqual(try Checkpoint.sniff(p), .hdf5)
        let sd = try Checkpoint.open(p)
        XCTAssertEqual(sd.format, .hdf5)
        XCTAssertEqual(sd.names, tensors.map(\.0))
        for (entry, (name, t)) in zip(sd.tensors, tensors) {
            XCTAssertEqual(entry.dtype, t.dtype, name)
            XCTAssertEqual(entry.shape, t.shape, name)
            XCTAssertEqual(try entry.load().bytes, t.bytes, name)
        }
        // Contiguous little-endian datasets point at their bytes in the file (for file-to-file copies).
        let raw = try Data(contentsOf: URL(fileURLWithPath: p))
        for entry in sd.tensors where entry.byteCount > 0 {
            guard let span = entry.span else {
                XCTAssertTrue([.bfloat16, .complex64, .complex128].contains(entry.dtype),
                              "\(entry.name): only bfloat16 (stored as float32) and complex (a compound) are not verbatim")
                continue
            }
            XCTAssertEqual([UInt8](raw[span.offset..<(span.offset + span.count)]), try entry.load().bytes, entry.name)
        }
        XCTAssertEqual(sd["group.bfloat16"]?.location, "/group/bfloat16 (stored as float32)")
        XCTAssertEqual(sd["layer1.0.conv1.weight"]?.location, "/layer1/0/conv1/weight")
        XCTAssertEqual(sd.metadata, [MetadataEntry(name: "note", value: .string("ü \"quoted\"")),
                                     MetadataEntry(name: "source_format", value: .string("pytorch-zip"))])
        XCTAssertEqual(progress.count, tensors.count)
        XCTAssertEqual(progress.last, tensors.reduce(0) { $0 + $1.1.byteCount })
    }

    func testCastAppliesToFloatingTensorsOnly() throws {
        let p = try writeH5(SampleTensors.all(holds: HDF5Writer.holds), "cast.h5", dtype: .bfloat16)
        let sd = try HDF5Reader.read(path: p)
        for (entry, (name, t)) in zip(sd.tensors, SampleTensors.all(holds: HDF5Writer.holds)) {
            XCTAssertEqual(entry.dtype, t.dtype.isFloatingPoint ? .bfloat16 : t.dtype, name)
            if t.dtype.isFloatingPoint {
                XCTAssertEqual(try entry.load().floats(), t.floats(), "\(name): values chosen to be exact in bfloat16")
            }
        }
    }

    func testNamesThatAreBothLeafAndGroupFallBackToFlatDatasets() throws {
        let names = ["a", "a.b", "a.c.d", "x.y", "x.z", "p..q", ".hidden", "slash/name"]
        XCTAssertEqual(try HDF5Writer.datasetPaths(names, file: "f"),
                       [["a"], ["a.b"], ["a.c.d"], ["x", "y"], ["x", "z"], ["p..q"], [".hidden"], ["slash", "name"]])
        let tensors = names.enumerated().map { ($0.element, Tensor(shape: [1], floats: [Float($0.offset)])) }
        let sd = try HDF5Reader.read(path: writeH5(tensors, "flat.h5"))
        XCTAssertEqual(sd.names, ["a", "a.b", "a.c.d", "x.y", "x.z", "p..q", ".hidden", "slash.name"])
        XCTAssertEqual(try sd.tensors.map { try $0.load().floats()[0] }, (0..<8).map(Float.init))
        let e = checkpointError { _ = try HDF5Writer.datasetPaths(["m.n", "m/n"], file: "f") }
        XCTAssertEqual(e?.key, "m/n")
    }

    func testWriterRejectsDuplicatesAndLeavesNothingBehind() throws {
        let t = Tensor(shape: [1], floats: [1])
        let e = checkpointError { _ = try self.writeH5([("w", t), ("w", t)], "dup.h5") }
        XCTAssertEqual(e?.key, "w")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("dup.h5")))
    }

    func testCorruptAndTruncatedFilesGiveOneClearError() throws {
        let good = try writeH5(SampleTensors.all(holds: HDF5Writer.holds), "good.h5")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: good)))
        let rows: [(String, [UInt8], String)] = [
            ("truncated", Array(bytes.prefix(bytes.count / 2)), "truncated"),
            ("signature only", Array(bytes.prefix(8)), "HDF5 file"),
            ("garbage after the signature", Array(bytes.prefix(8)) + (0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 97) }, "HDF5"),
        ]
        for (what, data, fragment) in rows {
            let p = try write(data, to: "bad.h5")
            guard let e = checkpointError({ _ = try Checkpoint.open(p) }) else { continue }
            XCTAssertTrue(e.description.contains(fragment), "\(what): \(e)")
            XCTAssertEqual(e.file, p, what)
            XCTAssertFalse(e.description.contains("\n"), what)
        }
        XCTAssertTrue(checkpointError { _ = try HDF5Reader.read(path: self.path("missing.h5")) }?.message.contains("not a readable HDF5 file") ?? false)
    }

    func testByteFlippedFilesNeverCrashTheCaller() throws {
        // libhdf5 itself can crash on some of these; the reader walks the structure in a child process.
        let good = try writeH5(SampleTensors.all(holds: HDF5Writer.holds), "good.h5", metadata: ["k": String(repeating: "v", count: 300)])
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: good)))
        var rng = SystemRandomNumberGenerator()
        var failures = 0
        for round in 0..<24 {
            var data = bytes
            for _ in 0..<(1 + round % 8) {
                let i = Int.random(in: 8..<data.count, using: &rng)
                data[i] = UInt8.random(in: 0...255, using: &rng)
            }
            let p = try write(data, to: "flipped\(round).h5")
            do {
                let sd = try Checkpoint.open(p)
                for t in sd.tensors { _ = try? t.load() }
            } catch let e as CheckpointError {
                failures += 1
                XCTAssertFalse(e.description.contains("\n"))
            }
        }
        _ = failures
    }

    func testKerasLegacyNaming() {
        func ds(_ path: String) -> H5Dataset {
            H5Dataset(name: H5Walker.dotted(path), hdfPath: path, dtype: .float32, shape: [1], plan: H5ReadPlan(memory: .nativeFloat), byteCount: 4)
        }
        var datasets = [ds("/model_weights/dense/dense/kernel:0"), ds("/model_weights/dense/dense/bias:0"),
                        ds("/model_weights/fc/kernel:0"), ds("/model_weights/inner/dense_3/kernel:0"),
                        ds("/optimizer_weights/adam/iter:0")]
        let attrs: [String: [String: [String]]] = [
            "/model_weights": ["layer_names0": ["inner", "fc"], "layer_names1": ["dense"]],
            "/model_weights/dense": ["weight_names": ["dense/kernel:0", "dense/bias:0"]],
            "/model_weights/fc": ["weight_names": ["kernel:0"]],
            "/model_weights/inner": ["weight_names": ["dense_3/kernel:0"]],
        ]
        XCTAssertEqual(HDF5Keras.rename(&datasets, stringAttributes: attrs), "legacy-h5")
        XCTAssertEqual(datasets.map(\.name), ["inner.dense_3.kernel", "fc.kernel", "dense.kernel", "dense.bias",
                                              "optimizer_weights.adam.iter:0"])
        XCTAssertEqual(HDF5Keras.stripOutputIndex("a/b:12"), "a/b")
        XCTAssertEqual(HDF5Keras.stripOutputIndex("a/b:x"), "a/b:x")
    }

    func testKeras3Naming() {
        func ds(_ path: String) -> H5Dataset {
            H5Dataset(name: H5Walker.dotted(path), hdfPath: path, dtype: .float32, shape: [1], plan: H5ReadPlan(memory: .nativeFloat), byteCount: 4)
        }
        var datasets = [ds("/layers/dense/vars/0"), ds("/layers/dense/vars/1"), ds("/layers/functional/layers/conv2d/vars/0"),
                        ds("/layers/block/dense1/vars/0"), ds("/optimizer/vars/0")]
        XCTAssertEqual(HDF5Keras.rename(&datasets, stringAttributes: [:]), "keras3-weights-h5")
        XCTAssertEqual(datasets.map(\.name), ["dense.0", "dense.1", "functional.conv2d.0", "block.dense1.0", "optimizer.vars.0"])
        var plain = [ds("/layer1/0/weight")]
        XCTAssertNil(HDF5Keras.rename(&plain, stringAttributes: [:]))
        XCTAssertEqual(plain[0].name, "layer1.0.weight")
    }

    func testNameOrderFallback() {
        let names = ["vars", "10", "2", "i8", "i16", "b", "A", "01", "1", "1a", "-"]
        XCTAssertEqual(names.sorted(by: H5.naturalOrder), ["01", "1", "2", "10", "-", "1a", "A", "b", "i16", "i8", "vars"])
    }
}
