import ArgumentParser
import Foundation
import Weights

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the forward pass of a model with its seeded weights on a random N×3×H×W input (or random token ids and masks).",
        discussion: """
            Runs one warm-up pass, then K timed passes, and prints the median in milliseconds.
            With --load FILE, times loading FILE onto the model instead, against read() of the same file's bytes
            into a fresh buffer, in the same process (medians of K runs each, page cache warm).
            """
    )

    @Option(name: .long, help: "Model name (see `weights models`).")
    var model: String

    @Option(name: .customLong("config"), help: ArgumentHelp("Model option KEY=VALUE (repeatable; see `weights models`).", valueName: "KEY=VALUE"))
    var config: [String] = []

    @Option(name: .long, help: "Batch size.")
    var batch: Int = 1

    @Option(name: .customLong("seq-len"), help: ArgumentHelp("Sequence length for models with token inputs: every free dimension other than the batch (src/tgt lengths S and T). Default: the model's example length (64).", valueName: "N"))
    var seqLen: Int?

    @Option(name: .long, help: "Timed runs after the warm-up.")
    var runs: Int = 10

    @Option(name: .long, help: "Time loading this checkpoint onto the model (vs read() of its bytes) instead of the forward pass.")
    var load: String?

    @Flag(name: .long, help: "Print {\"model\", \"batch\", \"median_ms\"} as JSON (with --load: {\"model\", \"file\", \"bytes\", \"read_ms\", \"load_ms\", \"ratio\"}).")
    var json = false

    func validate() throws {
        if batch < 1 { throw ValidationError("--batch must be ≥ 1") }
        if runs < 1 { throw ValidationError("--runs must be ≥ 1") }
        if let seqLen, seqLen < 1 { throw ValidationError("--seq-len must be ≥ 1") }
    }

    func run() throws {
        var m = try ModelRegistry.make(name: model, config: config)
        if let load { return try benchLoad(load, model: &m) }
        let x = Self.exampleInputs(m, batch: batch, seqLen: seqLen)
        _ = try m.forward(inputs: x)
        var times: [Double] = []
        let clock = ContinuousClock()
        for _ in 0..<runs {
            let d = try clock.measure { _ = try m.forward(inputs: x) }
            times.append(Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15)
        }
        times.sort()
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        if json {
            print(JSON.object([("model", .string(model)), ("batch", .int(Int64(batch))), ("median_ms", .double(median))]).rendered(pretty: false))
        } else {
            print(String(format: "%@ batch %ld: median %.2f ms over %ld runs (min %.2f, max %.2f)", model, batch, median, runs, times.first!, times.last!))
        }
    }

    /// Inputs at each spec's example shape (free dimensions at their example size or `seqLen`, batch `batch`): the
    /// model's own example inputs when it makes them (random token ids, causal masks), else seeded uniform floats,
    /// token ids 0, masks true.
    static func exampleInputs(_ m: any Model, batch: Int, seqLen: Int? = nil) -> [InputTensor] {
        var sizes: [String: Int] = [:]
        if let seqLen {
            for spec in m.inputSpecs { for case .free(let name, _) in spec.shape where name != "N" { sizes[name] = seqLen } }
        }
        if let p = m as? any ExampleInputProvider { return p.exampleInputs(batch: batch, sizes: sizes, seed: 1) }
        var rng = SeededGenerator(seed: 1)
        return m.inputSpecs.map { spec in
            let shape = spec.exampleShape(batch: batch, sizes: sizes)
            let n = shape.reduce(1, *)
            switch spec.dtype {
            case .int64: return .int64(shape: shape, values: [Int64](repeating: 0, count: n))
            case .bool: return .bool(shape: shape, values: [Bool](repeating: true, count: n))
            default: return .float32(rng.uniformTensor(shape, bound: 1))
            }
        }
    }

    /// Times `model.load(file)` against reading the file's bytes with read() into a fresh buffer.
    private func benchLoad(_ file: String, model m: inout any Model) throws {
        var bytes = 0
        let read = { () throws -> Void in bytes = try Self.readWholeFile(file) }
        try read()                                       // warms the page cache
        _ = try m.load(file)                             // and the loader's one-time set-up (catalog parsing)
        var readTimes: [Double] = [], loadTimes: [Double] = []
        for _ in 0..<runs {                              // interleaved, so drift affects both alike
            readTimes.append(try milliseconds(read))
            loadTimes.append(try milliseconds { _ = try m.load(file) })
        }
        let r = Self.median(readTimes.sorted()), l = Self.median(loadTimes.sorted())
        if json {
            print(JSON.object([("model", .string(model)), ("file", .string(file)), ("bytes", .int(Int64(bytes))),
                               ("read_ms", .double(r)), ("load_ms", .double(l)), ("ratio", .double(l / r))]).rendered(pretty: false))
        } else {
            print(String(format: "%@ <- %@ (%ld bytes): load median %.2f ms, read() median %.2f ms, ratio %.2f over %ld runs",
                         model, file, bytes, l, r, l / r, runs))
        }
    }

    /// read() of a whole file into a freshly allocated buffer (what "reading the file" costs); returns the size.
    static func readWholeFile(_ path: String) throws -> Int {
        let (fd, size) = try InputFile.open(path)
        defer { close(fd) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(size, 1), alignment: 64)
        defer { buffer.deallocate() }
        var done = 0
        while done < size {
            let n = Glibc.read(fd, buffer + done, size - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ValidationError("read of \(path) failed at byte \(done)") }
            done += n
        }
        return size
    }

    static func median(_ sorted: [Double]) -> Double {
        sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

private func milliseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
}
