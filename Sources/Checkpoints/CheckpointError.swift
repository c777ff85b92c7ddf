import Foundation
import TensorCore

/// The one error type of the checkpoint layer. Each field is filled by whoever knows it: the byte reader its
/// offset, the zip layer its member, the flattener the key, the caller the file. `description` renders them
/// in one line: `model.pth: member 'archive/data.pkl', byte 1234, key 'layer1.0.weight': what went wrong`.
public struct CheckpointError: WeightsError, Equatable {
    public var file: String?
    /// The shard file of a sharded checkpoint (`file` is then its index), as the index names it.
    public var shard: String?
    public var member: String?
    public var offset: Int?
    public var key: String?
    public var message: String

    public init(_ message: String, file: String? = nil, shard: String? = nil, member: String? = nil, offset: Int? = nil, key: String? = nil) {
        self.message = message
        self.file = file
        self.shard = shard
        self.member = member
        self.offset = offset
        self.key = key
    }

    /// One line, whatever the file put into names and messages: control characters are escaped and each field
    /// is capped, so hostile bytes cannot span lines or drive the terminal.
    public var description: String {
        var where_: [String] = []
        if let shard { where_.append("shard '\(Self.printable(shard))'") }
        if let member { where_.append("member '\(Self.printable(member))'") }
        if let offset { where_.append("byte \(offset)") }
        if let key { where_.append("key '\(Self.printable(key))'") }
        var s = file.map { "\(Self.printable($0)): " } ?? ""
        if !where_.isEmpty { s += where_.joined(separator: ", ") + ": " }
        return s + Self.printable(message, limit: 1000)
    }

    static func printable(_ text: String, limit: Int = 250) -> String {
        TerminalText.escape(text, limit: limit)
    }

    /// Fills in fields that are still unknown (context travels up; inner facts win).
    public func context(file: String? = nil, member: String? = nil, offset: Int? = nil, key: String? = nil) -> CheckpointError {
        var e = self
        if e.file == nil { e.file = file }
        if e.member == nil { e.member = member }
        if e.offset == nil { e.offset = offset }
        if e.key == nil { e.key = key }
        return e
    }
}

extension CheckpointError {
    /// Runs `body`, attaching context to any `CheckpointError` it throws and wrapping any other error.
    public static func withContext<T>(file: String? = nil, member: String? = nil, offset: Int? = nil, key: String? = nil,
                                      _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as CheckpointError {
            throw e.context(file: file, member: member, offset: offset, key: key)
        } catch {
            throw CheckpointError("\(error)", file: file, member: member, offset: offset, key: key)
        }
    }
}
