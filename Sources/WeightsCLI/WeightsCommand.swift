import ArgumentParser
import Weights
import Foundation

/// The `weights` root command.
public struct WeightsCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "weights",
        abstract: "Read, convert and verify PyTorch, safetensors, HDF5 and numpy checkpoints — no Python needed.",
        subcommands: [InspectCommand.self, ConvertCommand.self, MergeCommand.self, DiffCommand.self, VerifyCommand.self, ModelsCommand.self, MappingsCommand.self, BenchCommand.self, BenchGemmCommand.self]
    )
    public init() {}

    /// Runs the command line; failures print one line to stderr and exit 1, usage errors exit 64.
    public static func runMain(_ arguments: [String]? = nil) -> Never {
        SourceFilePool.raiseOpenFileLimit()
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            Foundation.exit(0)
        } catch let e as CLIFailure {
            if !e.message.isEmpty { printError(renderError(e)) }
            Foundation.exit(e.code)
        } catch let e as any WeightsError {
            printError(renderError(e))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}

/// Writes `error: TEXT` as one line on stderr; TEXT may hold names from files, so it is escaped.
func printError(_ text: String) {
    FileHandle.standardError.write(Data("error: \(TerminalText.escape(text))\n".utf8))
}

/// Writes `warning: TEXT` (or `note: TEXT`) as one escaped line on stderr.
func printNotice(_ text: String, kind: String = "warning") {
    FileHandle.standardError.write(Data("\(kind): \(TerminalText.escape(text))\n".utf8))
}

/// A failure the CLI reports with a given exit code.
public struct CLIFailure: WeightsError {
    public var message: String
    public var code: Int32
    public init(_ message: String, code: Int32 = 1) { self.message = message; self.code = code }
    public var description: String { message }
}
