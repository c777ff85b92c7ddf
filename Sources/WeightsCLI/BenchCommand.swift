import ArgumentParser
import Foundation
import Weights

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the forward pass of a model with its seeded weights on a random N×3×H×W input.",
        discussion: "Runs one warm-up pass, then K timed passes, and prints the median in milliseconds."
    )

    @Option(name: .long, help: "Model name (see `weights models`).")
    var model: String

    @Option(name: .long, help: "Batch size.")
    var batch: Int = 1

    @Option(name: .long, help: "Timed runs after the warm-up.")
    var runs: Int = 10

    @Flag(name: .long, help: "Print {\"model\", \"batch\", \"median_ms\"} as JSON.")
    var json = false

    func validate() throws {
        if batch < 1 { throw ValidationError("--batch must be ≥ 1") }
        if runs < 1 { throw ValidationError("--runs must be ≥ 1") }
    }

    func run() throws {
        let entry = try ModelRegistry.entry(model)
        let m = try entry.make(seed: 0)
        let side: Int
        switch entry.architecture {
        case .vit(let c): side = c.imgSize
        case .resnet: side = model.hasSuffix("_tiny") ? 32 : 224
        }
        var rng = SeededGenerator(seed: 1)
        let x = rng.uniformTensor([batch, 3, side, side], bound: 1)
        _ = try m.forward(x)
        var times: [Double] = []
        let clock = ContinuousClock()
        for _ in 0..<runs {
            let d = try clock.measure { _ = try m.forward(x) }
            times.append(Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15)
        }
        times.sort()
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        if json {
            print(JSON.object([("model", .string(model)), ("batch", .int(Int64(batch))), ("median_ms", .double(median))]).rendered(pretty: false))
        } else {
            print(String(format: "%@ batch %d: median %.2f ms over %d runs (min %.2f, max %.2f)", model, batch, median, runs, times.first!, times.last!))
        }
    }
}
