import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A folder of files written as a set: every file goes into a temporary sibling folder `.<name>.partial-XXXXXXXX`,
/// which is moved into place by `commit()` only once all are written, so nothing appears at the destination
/// before the whole set does.
///
/// - Absent destination: the move is `renameat2(RENAME_NOREPLACE)` (a folder appearing meanwhile is kept and this
///   commit fails); where the file system lacks it, a plain `rename` after checking the destination is absent.
/// - Existing destination: refused unless `overwrite`, and even then replaced only when it is a folder holding
///   nothing but files this writer produces (`replaceable`: `model.safetensors`, `model-NNNNN-of-NNNNN.safetensors`,
///   `model.safetensors.index.json`); anything else there (a `config.json`, a subfolder) refuses the write, naming
///   it. The swap is `renameat2(RENAME_EXCHANGE)` (else two renames), then the old files are removed.
/// - Failure: the temporary folder and everything in it are removed. SIGINT / SIGTERM / SIGHUP remove the file
///   being written, the finished ones (however many) and the folder: the folder holds one `PendingOutputs` slot
///   as a tree, not one slot per shard.
public final class ShardedOutput {
    public let destination: String
    public let temporaryDirectory: String
    public let overwrite: Bool
    private var open: [AtomicOutput] = []
    /// Files finished (renamed to their final names inside the temporary folder).
    private var finished: [String] = []
    private var folderSlot: Int?
    private var committed = false

    public init(destination: String, overwrite: Bool) throws {
        self.destination = destination
        self.overwrite = overwrite
        try Self.checkDestination(destination, overwrite: overwrite)
        let parent = PathText.parent(destination)
        let base = PathText.lastComponent(destination)
        var path = ""
        var made = false
        for _ in 0..<16 {
            path = PathText.join(parent, AtomicOutput.temporaryName(for: base))
            folderSlot = PendingOutputs.register(path, tree: true)
            if mkdir(path, 0o755) == 0 { made = true; break }
            let e = errno
            if let s = folderSlot { PendingOutputs.unregister(s) }
            folderSlot = nil
            errno = e
            if e != EEXIST { break }
        }
        guard made else {
            throw CheckpointError("cannot create the temporary folder \(path): \(String(cString: strerror(errno)))", file: destination)
        }
        temporaryDirectory = path
    }

    deinit {
        if !committed {
            open.removeAll()  // their deinit removes their temporary files
            for name in finished { unlink(temporaryDirectory + "/" + name) }
            rmdir(temporaryDirectory)
        }
        if let folderSlot { PendingOutputs.unregister(folderSlot) }
    }

    /// The names an existing destination may hold for `overwrite` to replace it.
    public static func replaceable(_ name: String) -> Bool {
        if name == "model.safetensors" || name == "model.safetensors.index.json" { return true }
        // model-NNNNN-of-NNNNN.safetensors (five or more digits each)
        guard name.hasPrefix("model-"), name.hasSuffix(".safetensors") else { return false }
        let middle = name.dropFirst(6).dropLast(12).split(separator: "-", omittingEmptySubsequences: false)
        return middle.count == 3 && middle[1] == "of" && [middle[0], middle[2]].allSatisfy { $0.count >= 5 && $0.allSatisfy(\.isASCIIDigitCharacter) }
    }

    /// Throws unless `path` may become the output folder: absent, or (with `overwrite`) a folder of replaceable files.
    public static func checkDestination(_ path: String, overwrite: Bool) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw CheckpointError("cannot check the output path: \(String(cString: strerror(errno)))", file: path)
        }
        let kind = st.st_mode & S_IFMT
        guard kind != S_IFLNK else {
            throw CheckpointError("the output path is a symbolic link; refusing to replace or follow it (give the folder it points to)", file: path)
        }
        guard kind == S_IFDIR else {
            throw CheckpointError("the output path is \(InputFile.kindName(st.st_mode)); sharded output (--max-shard-size) is a folder", file: path)
        }
        guard overwrite else { throw CheckpointError("already exists (use --force to replace a folder of model*.safetensors shards)", file: path) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        if let other = names.sorted().first(where: { !replaceable($0) || !isRegular(path + "/" + $0) }) {
            throw CheckpointError("holds '\(other)', which is not a file of a sharded safetensors output; --force replaces only a folder holding nothing but model.safetensors, model-NNNNN-of-NNNNN.safetensors and model.safetensors.index.json",
                                  file: path)
        }
    }

    static func isRegular(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// A new file `name` in the set; write it, then call `finish(_:durable:)`.
    public func file(_ name: String) throws -> AtomicOutput {
        let out = try AtomicOutput(destination: temporaryDirectory + "/" + name, overwrite: false)
        open.append(out)
        return out
    }

    /// Closes a file of the set under its final name inside the temporary folder.
    public func finish(_ out: AtomicOutput, durable: Bool) throws {
        let name = PathText.lastComponent(out.destination)
        try out.commit(durable: durable)
        open.removeAll { $0 === out }
        finished.append(name)
    }

    /// Moves the finished set to `destination` (see the type's notes); with `durable`, first syncs the folder.
    public func commit(durable: Bool = false) throws {
        guard open.isEmpty else { throw CheckpointError("\(open.count) file(s) of the set were not finished", file: destination) }
        if durable { try Self.syncFolder(temporaryDirectory, for: destination) }
        try Self.checkDestination(destination, overwrite: overwrite)
        var st = stat()
        if lstat(destination, &st) == 0 {
            try replace()
        } else {
            try moveNoReplace()
        }
        committed = true
        finished = []
        // The set is in place (and any replaced files are gone): nothing of it may be removed on a signal now.
        if let folderSlot { PendingOutputs.unregister(folderSlot) }
        folderSlot = nil
        if durable { try Self.syncFolder(PathText.parent(destination), for: destination) }
    }

    private func moveNoReplace() throws {
        if let r2 = AtomicOutput.renameat2 {
            if r2(AT_FDCWD, temporaryDirectory, AT_FDCWD, destination, AtomicOutput.renameNoReplaceFlag) == 0 { return }
            let e = errno
            if e == EEXIST || e == ENOTEMPTY { throw CheckpointError("already exists (use --force to replace a folder of model*.safetensors shards)", file: destination) }
            guard e == EINVAL || e == ENOSYS || e == ENOTSUP || e == EOPNOTSUPP else {
                throw CheckpointError("cannot move the output folder into place: \(String(cString: strerror(e)))", file: destination)
            }
        }
        // No RENAME_NOREPLACE here: checked absent just before; rename() fails on a non-empty folder that appeared.
        guard rename(temporaryDirectory, destination) == 0 else {
            throw CheckpointError("cannot move the output folder into place: \(String(cString: strerror(errno)))", file: destination)
        }
    }

    static let renameExchangeFlag: UInt32 = 2  // RENAME_EXCHANGE

    /// Swaps the finished set with the existing folder, then removes the old files (now in the temporary folder).
    private func replace() throws {
        var swapped = false
        if let r2 = AtomicOutput.renameat2, r2(AT_FDCWD, temporaryDirectory, AT_FDCWD, destination, Self.renameExchangeFlag) == 0 {
            swapped = true
        }
        if !swapped {
            let old = PathText.join(PathText.parent(destination), AtomicOutput.temporaryName(for: PathText.lastComponent(destination) + ".old"))
            guard rename(destination, old) == 0 else {
                throw CheckpointError("cannot move the old output folder aside: \(String(cString: strerror(errno)))", file: destination)
            }
            guard rename(temporaryDirectory, destination) == 0 else {
                let e = errno
                rename(old, destination)
                throw CheckpointError("cannot move the output folder into place: \(String(cString: strerror(e)))", file: destination)
            }
            guard rename(old, temporaryDirectory) == 0 else { return }  // the old folder stays beside, named .NAME.old.partial-…
        }
        // The old set is now at temporaryDirectory: remove what checkDestination allowed, then the folder.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporaryDirectory)) ?? [] where Self.replaceable(name) {
            unlink(temporaryDirectory + "/" + name)
        }
        rmdir(temporaryDirectory)
    }

    static func syncFolder(_ path: String, for destination: String) throws {
        let fd = Glibc.open(path.isEmpty ? "." : path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError("cannot open \(path) to sync it: \(String(cString: strerror(errno)))", file: destination) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw CheckpointError("fsync of \(path) failed: \(String(cString: strerror(errno)))", file: destination) }
    }
}

private extension Character {
    var isASCIIDigitCharacter: Bool { isASCII && isNumber }
}
