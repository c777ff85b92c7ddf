import ArgumentParser
import Foundation
import Weights

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Load weights onto a Swift model, run it on stored inputs and compare with stored PyTorch outputs.",
        discussion: """
            REF holds the inputs — `input` for a model with one input, `input.<name>` for each of several (float32, \
            int64 or bool; names as `weights models --json` lists them) — and the outputs: `output`, or `output.0`, \
            `output.1`, … for a tuple. Every output is compared and reported. Other floating tensors are intermediate \
            activations named by module path (`layer1`, `blocks.5`); the first that diverges is reported. An element \
            passes when |actual − ref| ≤ atol + rtol·|ref|; by default atol = 1e-4·max|ref| and rtol = 1e-4. \
            Exit status: 0 outputs agree, 2 outputs differ, 1 error (including a load that violates its policy).
            """
    )

    @Option(name: .long, help: "Model name (see `weights models`).")
    var model: String

    @Option(name: .customLong("config"), help: ArgumentHelp("Model option KEY=VALUE (repeatable; see `weights models`).", valueName: "KEY=VALUE"))
    var config: [String] = []

    @Option(name: .long, help: "Checkpoint file; repeat to load several in order.")
    var weights: [String] = []

    @Option(name: .long, help: "Reference file with the inputs and outputs (safetensors, h5, npz or pth).")
    var reference: String

    @Option(name: .long, help: "Mapping table: auto, a table name (see `weights mappings`) or a table file.")
    var mapping: String = "auto"

    @Option(name: .long, help: "Load policy: strict, merge or partial.")
    var policy: PolicyArgument = .strict

    @Option(name: .long, help: "Absolute tolerance (default 1e-4 × max|ref|).")
    var atol: Double?

    @Option(name: .long, help: "Relative tolerance.")
    var rtol: Double = 1e-4

    @Flag(name: .long, help: "Print one JSON document.")
    var json = false

    @Flag(name: .customLong("verify-crc"), help: "Also check the CRC-32 of zip members that are not read into memory (members read into memory are always checked).")
    var verifyCRC = false

    @Option(name: .customLong("max-output-bytes"), help: "Largest total of tensor bytes the input may declare, e.g. 200G (default: the larger of 16 GiB and 16 × the input's size).")
    var maxOutputBytes: ByteCount?

    func validate() throws {
        if weights.isEmpty { throw ValidationError("give at least one --weights FILE") }
        if let atol, atol < 0 { throw ValidationError("--atol must be ≥ 0") }
        if rtol < 0 { throw ValidationError("--rtol must be ≥ 0") }
    }

    func run() throws {
        var m = try ModelRegistry.make(name: model, config: config)
        let report: LoadReport
        do {
            report = try m.load(weights, options: LoadOptions(mapping: MappingChoice(mapping), policy: policy.policy,
                                                                 read: ReadOptions(verifyCRC: verifyCRC, maxOutputBytes: maxOutputBytes?.bytes)))
        } catch let e as MappingError {
            if let r = e.report {
                if json {
                    print(JSON.object([("passed", .bool(false)), ("error", .string(renderError(e))), ("load", r.json)]).rendered())
                } else {
                    FileHandle.standardError.write(Data(r.rendered().utf8))
                }
            }
            throw CLIFailure(renderError(e))
        }
        let ref = try ReferenceSet.load(reference)
        let result = try Verifier.verify(m, reference: ref, tolerance: Tolerance(atol: atol, rtol: rtol))
        if json {
            print(JSON.object([
                ("passed", .bool(result.passed)),
                ("model", .string(model)),
                ("reference", .string(reference)),
                ("outputs", .array(result.outputs.map(\.json))),
                ("activations", .array(result.activations.map(\.json))),
                ("first_divergence", result.firstDivergence.map { .string($0) } ?? .null),
                ("unmatched_activations", .array(result.unmatched.map { .string($0) })),
                ("forward_seconds", .double(result.seconds)),
                ("load", report.json),
            ]).rendered())
        } else {
            print(report.rendered(), terminator: "")
            for c in result.outputs + result.activations {
                print(TerminalText.escape(Self.line(c)))
            }
            if let d = result.firstDivergence { print("first divergence: \(TerminalText.escape(d))") }
            if !result.unmatched.isEmpty {
                let names = result.unmatched.map { TerminalText.escape($0) }.joined(separator: ", ")
                print("not compared (the model reports no activation of that name; paths: \(m.activationPaths.joined(separator: ", "))): \(names)")
            }
            print(result.passed ? "PASS" : "FAIL: outputs differ")
        }
        if !result.passed { throw CLIFailure("", code: 2) }
    }

    static func line(_ c: Comparison) -> String {
        var s = "\(c.passed ? "ok  " : "FAIL") \(c.name) \(c.shape): max|Δ| \(fmt(c.maxAbsError)) (max|ref| \(fmt(c.maxAbsReference)), atol \(fmt(c.atol)), rtol \(fmt(c.rtol)))"
        s += ", max rel \(fmt(c.maxRelError)), cosine \(String(format: "%.8f", c.cosine))"
        if let t1 = c.top1Agreement, let t5 = c.top5Agreement { s += ", top-1 \(pct(t1)), top-5 \(pct(t5))" }
        if !c.passed { s += "; \(c.failingElements) element(s) out of tolerance, worst at \(c.worstIndex): \(c.worstActual) vs \(c.worstReference)" }
        return s
    }

    static func fmt(_ x: Double) -> String { String(format: "%.3g", x) }
    static func pct(_ x: Double) -> String { String(format: "%.0f%%", x * 100) }
}

enum PolicyArgument: String, ExpressibleByArgument, CaseIterable {
    case strict, merge, partial
    var policy: LoadPolicy { LoadPolicy(rawValue: rawValue)! }
}
