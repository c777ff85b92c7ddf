import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Temporary output files (and folders, removed once empty) to remove if the process is interrupted (SIGINT, SIGTERM, SIGHUP).
///
/// The handler must be async-signal-safe, so the paths live in one preallocated C buffer (`slots` × PATH_MAX
/// bytes) and slot ownership in two lock-free bit masks: `reserved` (slot taken) and `armed` (path fully written).
/// The handler only reads the masks, calls `unlink` on armed paths, restores the default action and re-raises
/// the signal, so the process still ends as the signal says (exit status 128+n for the shell). A signal that was
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
    /// The process that registered the paths (a forked child must not remove its parent's files).
    static let owner = Atomic<Int32>(0)
    static let installed = Mutex<Bool>(false)

    static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// Records `path` for removal on a signal; returns its slot, or nil when the path is too long or all slots
    /// are taken (then the file is only removed on an ordinary failure).
    static func register(_ path: String) -> Int? {
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
        armed.bitwiseOr(1 << UInt64(slot), ordering: .releasing)
        return slot
    }

    /// Forgets a slot (the file was committed or already removed).
    static func unregister(_ slot: Int) {
        guard slot >= 0, slot < slots else { return }
        armed.bitwiseAnd(~(1 << UInt64(slot)), ordering: .releasing)
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
        for slot in 0..<slots where mask & (1 << UInt64(slot)) != 0 {
            unlink(buffer + slot * pathBytes)
        }
        // Then temporary folders (`ShardedOutput`), empty once their files are gone; rmdir fails harmlessly on files.
        for slot in 0..<slots where mask & (1 << UInt64(slot)) != 0 {
            rmdir(buffer + slot * pathBytes)
        }
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
