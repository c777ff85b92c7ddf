import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Temporary output files and folders to remove if the process is interrupted (SIGINT, SIGTERM, SIGHUP).
///
/// The handler must be async-signal-safe, so the paths live in one preallocated C buffer (`slots` × PATH_MAX
/// bytes) and slot ownership in lock-free bit masks: `reserved` (slot taken), `armed` (path fully written) and
/// `trees` (the path is a temporary folder whose entries go too, however many: `ShardedOutput` registers its
/// folder once instead of one slot per shard). The handler only reads the masks, calls `unlink` on armed paths,
/// empties each tree with `open(O_DIRECTORY | O_NOFOLLOW)`, `getdents64` and `unlinkat` (raw system calls into a
/// preallocated buffer; `opendir`/`readdir` allocate and are not async-signal-safe) and `rmdir`s it, restores
/// the default action and re-raises the signal, so the process still ends as the signal says (exit status 128+n
/// for the shell). Subfolders of a tree are left (the writers make none); `rmdir` then fails harmlessly. A signal that was
/// ignored when the first output was registered (`nohup` ignores SIGHUP) stays ignored. A forked child (the
/// HDF5 isolation) inherits the handler but removes nothing: only the registering process does.
enum PendingOutputs {
    static let slots = 64
    static let pathBytes = Int(PATH_MAX)

    nonisolated(unsafe) static let buffer: UnsafeMutablePointer<CChar> = {
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: slots * pathBytes)
        p.initialize(repeating: 0, count: slots * pathBytes)
        return p
    }()
    static let reserved = Atomic<UInt64>(0)
    static let armed = Atomic<UInt64>(0)
    static let trees = Atomic<UInt64>(0)
    /// Where the handler reads folder entries (one handler runs at a time: each blocks the other signals).
    static let entryBufferBytes = 32 << 10
    nonisolated(unsafe) static let entryBuffer: UnsafeMutableRawPointer =
        UnsafeMutableRawPointer.allocate(byteCount: entryBufferBytes, alignment: 8)
    typealias GetDents = @convention(c) (Int32, UnsafeMutableRawPointer?, Int) -> Int
    /// glibc's `getdents64` wrapper (2.30+), looked up once before any handler runs (Swift does not import it,
    /// nor the variadic `syscall`). Without it a tree loses only the files that have their own slot.
    nonisolated(unsafe) static let getdents64: GetDents? = {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "getdents64") else { return nil }  // RTLD_DEFAULT
        return unsafeBitCast(sym, to: GetDents.self)
    }()
    /// The process that registered the paths (a forked child must not remove its parent's files).
    static let owner = Atomic<Int32>(0)
    static let installed = Mutex<Bool>(false)

    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// Records `path` for removal on a signal; returns its slot, or nil when the path is too long or all slots
    /// are taken (then the file is only removed on an ordinary failure). A `tree` is a folder whose entries are
    /// removed with it.
    static func register(_ path: String, tree: Bool = false) -> Int? {
        installHandlers()
        let bytes = Array(path.utf8CString)
        guard bytes.count <= pathBytes else { return nil }
        var slot: Int?
        var current = reserved.load(ordering: .relaxed)
        while slot == nil {
            guard current != UInt64.max else { return nil }
            let free = (~current).trailingZeroBitCount
            let (exchanged, original) = reserved.compareExchange(expected: current, desired: current | (1 << UInt64(free)),
                                                                  ordering: .acquiringAndReleasing)
            if exchanged { slot = free } else { current = original }
        }
        guard let slot else { return nil }
        let dst = buffer + slot * pathBytes
        bytes.withUnsafeBufferPointer { src in
            if let s = src.baseAddress { dst.update(from: s, count: bytes.count) }
        }
        owner.store(getpid(), ordering: .releasing)
        if tree { trees.bitwiseOr(1 << UInt64(slot), ordering: .releasing) }
        armed.bitwiseOr(1 << UInt64(slot), ordering: .releasing)
        return slot
    }

    /// Forgets a slot (the file was committed or already removed).
    static func unregister(_ slot: Int) {
        guard slot >= 0, slot < slots else { return }
        armed.bitwiseAnd(~(1 << UInt64(slot)), ordering: .releasing)
        trees.bitwiseAnd(~(1 << UInt64(slot)), ordering: .releasing)
        reserved.bitwiseAnd(~(1 << UInt64(slot)), ordering: .releasing)
    }

    /// Paths currently armed (for tests).
    static var armedPaths: [String] {
        let mask = armed.load(ordering: .acquiring)
        return (0..<slots).filter { mask & (1 << UInt64($0)) != 0 }.map { String(cString: buffer + $0 * pathBytes) }
    }

    private static func installHandlers() {
        installed.withLock { done in
            guard !done else { return }
            done = true
            // Touch everything the handler reads, so no lazy initialisation happens inside it.
            _ = buffer
            _ = armed.load(ordering: .relaxed)
            _ = trees.load(ordering: .relaxed)
            _ = entryBuffer
            _ = getdents64
            _ = owner.load(ordering: .relaxed)
            for sig in signals {
                var old = sigaction()
                guard sigaction(sig, nil, &old) == 0 else { continue }
                if let h = old.__sigaction_handler.sa_handler, unsafeBitCast(h, to: Int.self) == 1 { continue }  // SIG_IGN
                var sa = sigaction()
                sa.__sigaction_handler.sa_handler = pendingOutputsSignalHandler
                sigemptyset(&sa.sa_mask)
                for s in signals { sigaddset(&sa.sa_mask, s) }
                sa.sa_flags = 0
                sigaction(sig, &sa, nil)
            }
        }
    }

    /// The signal-time work: unlink the armed paths (only in the registering process).
    static func removeArmed() {
        guard owner.load(ordering: .acquiring) == getpid() else { return }
        let mask = armed.load(ordering: .acquiring)
        guard mask != 0 else { return }
        let treeMask = trees.load(ordering: .acquiring)
        for slot in 0..<slots where mask & (1 << UInt64(slot)) != 0 && treeMask & (1 << UInt64(slot)) == 0 {
            unlink(buffer + slot * pathBytes)
        }
        // Then temporary folders (`ShardedOutput`): their remaining entries, then the folder itself; rmdir fails
        // harmlessly on files and on a folder that still holds something.
        for slot in 0..<slots where mask & (1 << UInt64(slot)) != 0 {
            if treeMask & (1 << UInt64(slot)) != 0 { emptyFolder(buffer + slot * pathBytes) }
            rmdir(buffer + slot * pathBytes)
        }
    }

    /// Unlinks every entry of the folder at `path` (not following a symbolic link there), with system calls only:
    /// no allocation, no locks. Passes over the folder until one removes nothing (entries removed while reading
    /// can shift others past the read position), at most 64 passes.
    static func emptyFolder(_ path: UnsafePointer<CChar>) {
        guard let getdents = getdents64 else { return }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return }
        let buf = entryBuffer
        for _ in 0..<64 {
            var removed = false
            guard lseek(fd, 0, SEEK_SET) == 0 else { break }
            while true {
                let n = getdents(fd, buf, entryBufferBytes)
                guard n > 0, n <= entryBufferBytes else { break }
                // struct linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, char d_name[] (NUL-ended)
                var offset = 0
                while offset + 20 <= n {
                    let reclen = Int(buf.loadUnaligned(fromByteOffset: offset + 16, as: UInt16.self))
                    guard reclen >= 20, offset + reclen <= n else { break }
                    let name = (buf + offset + 19).assumingMemoryBound(to: CChar.self)
                    let dot = name[0] == 0x2E
                    let special = dot && (name[1] == 0 || (name[1] == 0x2E && name[2] == 0))
                    if !special, unlinkat(fd, name, 0) == 0 { removed = true }
                    offset += reclen
                }
            }
            if !removed { break }
        }
        close(fd)
    }
}

/// SIGINT / SIGTERM / SIGHUP: remove the temporary outputs, then die of the signal with the default action.
private func pendingOutputsSignalHandler(_ sig: Int32) {
    let saved = errno
    PendingOutputs.removeArmed()
    signal(sig, SIG_DFL)
    raise(sig)  // blocked until this handler returns, then delivered with the default action
    errno = saved
}
