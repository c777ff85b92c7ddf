import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Turns SIGBUS on a memory-mapped input that shrank into a reported error (see `MappedFile`).
///
/// Swift has no `sigsetjmp`, so the handler cannot unwind. Instead it makes the faulting access succeed: it maps
/// anonymous zero pages over the rest of the damaged mapping (`MAP_FIXED`), marks the mapping's slot as faulted,
/// bumps a fault counter and returns. Readers check afterwards and throw, so the zeros never reach a result.
/// A SIGBUS outside every registered mapping restores the previous action (the Swift runtime's crash reporter) and
/// returns, so the fault recurs and is handled as before. The mapping ranges live in preallocated memory and the slot state in
/// lock-free masks, so the handler allocates nothing and takes no lock. 64 mappings can be guarded at once; a
/// 65th is read unguarded.
enum MappingGuard {
    static let slots = 64
    /// `[start, end)` of each slot's mapping, whole pages.
    nonisolated(unsafe) static let ranges: UnsafeMutablePointer<UInt> = {
        let p = UnsafeMutablePointer<UInt>.allocate(capacity: 2 * slots)
        p.initialize(repeating: 0, count: 2 * slots)
        return p
    }()
    static let reserved = Atomic<UInt64>(0)
    static let armed = Atomic<UInt64>(0)
    static let faultedMask = Atomic<UInt64>(0)
    /// Faults handled so far; `Checkpoint.open` and `TensorEntry.load` compare it before and after.
    static let faults = Atomic<Int>(0)
    static var faultCount: Int { faults.load(ordering: .acquiring) }
    static let pageSize = UInt(max(sysconf(Int32(_SC_PAGESIZE)), 4096))
    /// Slot → path, for the error (never touched by the handler).
    static let paths = Mutex<[Int: String]>([:])
    static let installed = Mutex<Bool>(false)
    /// The SIGBUS action before ours (the Swift runtime's crash reporter, or the default), restored for faults
    /// that are not ours.
    nonisolated(unsafe) static let previous: UnsafeMutablePointer<sigaction> = {
        let p = UnsafeMutablePointer<sigaction>.allocate(capacity: 1)
        p.initialize(to: sigaction())
        return p
    }()

    static func register(start: UnsafeRawPointer, count: Int, path: String) -> Int? {
        installHandler()
        var current = reserved.load(ordering: .relaxed)
        var slot: Int?
        while slot == nil {
            guard current != UInt64.max else { return nil }
            let free = (~current).trailingZeroBitCount
            let (ok, original) = reserved.compareExchange(expected: current, desired: current | (1 << UInt64(free)),
                                                          ordering: .acquiringAndReleasing)
            if ok { slot = free } else { current = original }
        }
        guard let slot else { return nil }
        let s = UInt(bitPattern: start)
        let (end, o) = s.addingReportingOverflow(UInt(count))
        guard !o else { reserved.bitwiseAnd(~(1 << UInt64(slot)), ordering: .releasing); return nil }
        ranges[2 * slot] = s
        ranges[2 * slot + 1] = (end + pageSize - 1) / pageSize * pageSize
        paths.withLock { $0[slot] = path }
        faultedMask.bitwiseAnd(~(1 << UInt64(slot)), ordering: .releasing)
        armed.bitwiseOr(1 << UInt64(slot), ordering: .releasing)
        return slot
    }

    static func unregister(_ slot: Int) {
        armed.bitwiseAnd(~(1 << UInt64(slot)), ordering: .releasing)
        paths.withLock { _ = $0.removeValue(forKey: slot) }
        reserved.bitwiseAnd(~(1 << UInt64(slot)), ordering: .releasing)
    }

    static func faulted(_ slot: Int) -> Bool {
        faultedMask.load(ordering: .acquiring) & (1 << UInt64(slot)) != 0
    }

    static func shrankError(_ path: String) -> CheckpointError {
        var st = stat()
        let now = stat(path, &st) == 0 ? " (it now has \(st.st_size) bytes)" : ""
        return CheckpointError("the file shrank while it was being read\(now); nothing read after that is used", file: path)
    }

    /// Throws if a mapping faulted since `before` (a value of `faults`), naming a faulted file.
    static func check(since before: Int) throws {
        guard faults.load(ordering: .acquiring) != before else { return }
        let mask = faultedMask.load(ordering: .acquiring)
        let path = paths.withLock { p in (0..<slots).first { mask & (1 << UInt64($0)) != 0 }.flatMap { p[$0] } }
        throw shrankError(path ?? "an input file")
    }

    private static func installHandler() {
        installed.withLock { done in
            guard !done else { return }
            done = true
            _ = ranges
            _ = pageSize
            _ = armed.load(ordering: .relaxed)
            _ = previous
            var sa = sigaction()
            sa.__sigaction_handler.sa_sigaction = mappingGuardSIGBUS
            sigemptyset(&sa.sa_mask)
            sa.sa_flags = SA_SIGINFO
            sigaction(SIGBUS, &sa, previous)
        }
    }

    /// The handler's work: true if `address` lay in a guarded mapping (now patched with zero pages).
    static func patch(_ address: UInt) -> Bool {
        let mask = armed.load(ordering: .acquiring)
        guard mask != 0 else { return false }
        for slot in 0..<slots where mask & (1 << UInt64(slot)) != 0 {
            let start = ranges[2 * slot], end = ranges[2 * slot + 1]
            guard address >= start, address < end else { continue }
            let page = address / pageSize * pageSize
            let p = mmap(UnsafeMutableRawPointer(bitPattern: page), Int(end - page), PROT_READ,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
            guard p != MAP_FAILED else { return false }
            faultedMask.bitwiseOr(1 << UInt64(slot), ordering: .releasing)
            faults.wrappingAdd(1, ordering: .releasing)
            return true
        }
        return false
    }
}

private func mappingGuardSIGBUS(_ sig: Int32, _ info: UnsafeMutablePointer<siginfo_t>?, _ context: UnsafeMutableRawPointer?) {
    let saved = errno
    defer { errno = saved }
    if let info, MappingGuard.patch(UInt(bitPattern: info.pointee._sifields._sigfault.si_addr)) { return }
    sigaction(SIGBUS, MappingGuard.previous, nil)  // not ours: the access faults again and is handled as before
}
