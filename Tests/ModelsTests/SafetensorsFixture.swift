import Foundation
import TensorCore

/// A minimal safetensors reader for the test fixtures (8-byte little-endian header length, JSON header, raw
/// little-endian data), so these tests do not depend on the Checkpoints readers they help validate.
struct SafetensorsFixture {
    struct Entry { let dtype: DType; let shape: [Int]; let range: Range<Int> }
    let entries: [String: Entry]
    let metadata: [String: String]
    let data: Data

    enum Failure: Error, CustomStringConvertible {
        case missing(String), malformed(String)
        var description: String {
            switch self {
            case .missing(let s): return "fixture not found: \(s) (run Tools/make_model_fixtures.py)"
            case .malformed(let s): return "malformed fixture: \(s)"
            }
        }
    }

    static func url(_ name: String) throws -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures") else {
            throw Failure.missing(name)
        }
        return url
    }

    init(named name: String) throws { try self.init(url: Self.url(name)) }

    init(url: URL) throws {
        let bytes = try Data(contentsOf: url)
        guard bytes.count >= 8 else { throw Failure.malformed("\(url.lastPathComponent): shorter than 8 bytes") }
        let n = Int(bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self).littleEndian })
        guard n <= bytes.count - 8,
              let json = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + n))) as? [String: Any] else {
            throw Failure.malformed("\(url.lastPathComponent): header")
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in json {
            if key == "__metadata__" { metadata = value as? [String: String] ?? [:]; continue }
            guard let d = value as? [String: Any], let code = d["dtype"] as? String, let dtype = DType(safetensorsName: code),
                  let shape = d["shape"] as? [Int], let offs = d["data_offsets"] as? [Int], offs.count == 2,
                  offs[0] <= offs[1], 8 + n + offs[1] <= bytes.count,
                  offs[1] - offs[0] == shape.reduce(1, *) * dtype.byteSize else {
                throw Failure.malformed("\(url.lastPathComponent): entry \(key)")
            }
            entries[key] = Entry(dtype: dtype, shape: shape, range: (8 + n + offs[0])..<(8 + n + offs[1]))
        }
        self.entries = entries
        self.metadata = metadata
        self.data = bytes
    }

    var keys: [String] { entries.keys.sorted() }

    func tensor(_ key: String) throws -> Tensor {
        guard let e = entries[key] else { throw Failure.missing(key) }
        return Tensor(dtype: e.dtype, shape: e.shape, bytes: [UInt8](data.subdata(in: e.range)))
    }

    func floats(_ key: String) throws -> FloatTensor { FloatTensor(try tensor(key)) }
}
