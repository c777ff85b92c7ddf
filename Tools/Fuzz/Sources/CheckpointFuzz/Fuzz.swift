// libFuzzer entry point for the checkpoint readers (see ../../README.md).
//
// Each input becomes one file (per-process scratch path, rewritten for every input), which goes through the public
// API exactly as a user's file would: `Checkpoint.open`, then `load()` on every tensor entry. Thrown errors are the
// expected outcome for almost every input and are swallowed; a finding is anything else — a Swift trap, an ASan
// report, a leak, a timeout, an out-of-memory — or, unless FUZZ_STRICT=0, a broken invariant of the public API:
//   * every error that escapes is a `CheckpointError` (one whose description is not one printable line, or is
//     over 2000 bytes, is a "soft finding": recorded, not fatal — see SoftFindings);
//   * a loaded tensor has the dtype and shape its entry announced;
//   * an entry's `span` (bytes said to lie verbatim in the file) lies inside the file and holds exactly the bytes
//     `load()` returned;
//   * a dict that loads completely survives a round trip through SafetensorsWriter (RoundTrip.swift).
// Invariant violations abort with a message starting "fuzz invariant:", so they are reported like crashes.
//
// FUZZ_MODE selects how an input is turned into a file (see Inputs.swift): raw (default), pickle, legacy,
// zip, safetensors, npy, hdf5, zipdir, keras, index, dcp. FUZZ_SOFT_DIR and FUZZ_SAVE_FILE: see below.
import Weights
#if canImport(Glibc)
import Glibc
#endif

/// Entries larger than this are not loaded (the harness looks for crashes, not for large allocations it asked for).
let maxEntryBytes = 64 << 20
/// Total bytes loaded per input.
let maxLoadedBytes = 256 << 20

let strict: Bool = {
    guard let v = getenv("FUZZ_STRICT") else { return true }
    return String(cString: v) != "0"
}()

let mode: FuzzMode = {
    let name = getenv("FUZZ_MODE").map { String(cString: $0) } ?? "raw"
    guard let m = FuzzMode(rawValue: name) else {
        say("CheckpointFuzz: unknown FUZZ_MODE '\(name)'; use one of: \(FuzzMode.allCases.map(\.rawValue).joined(separator: ", "))\n")
        exit(64)
    }
    return m
}()

/// One scratch file per process, rewritten (unlinked and created anew) for each input, so a mapping that somehow
/// outlived its input can never see the next input's bytes change under it.
let scratchPath: String = {
    let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
    let path = "\(dir)/weights-fuzz-\(getpid()).bin"
    atexit { unlink(scratchPath) }
    return path
}()

/// FUZZ_SAVE_FILE=path: also write each assembled file there (use with a single input, to turn a structured-mode
/// input into the checkpoint file it stands for).
let saveFile: String? = getenv("FUZZ_SAVE_FILE").map { String(cString: $0) }

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    _ = mode
    _ = scratchPath
    // FUZZ_CHILD_CRASHES=1: leave libFuzzer's handlers in the HDF5 reader's forked child (artifacts come from there;
    // -minimize_crash cannot use them, as it watches the exit status of the parent).
    if getenv("FUZZ_CHILD_CRASHES").map({ String(cString: $0) }) != "1" { ForkedChild.install() }
    // hdf5 mode: libhdf5 runs in-process, so that the walker's and the checks' coverage reaches libFuzzer (a
    // forked child's counters never do) and a libhdf5 crash in the data read becomes an artifact to replay (the
    // normal reader contains it in its child). FUZZ_HDF5_ISOLATED=1 keeps the reader's child.
    switch mode {
    case .index: _ = IndexModeFiles.indexPath
    case .dcp: _ = DCPModeFiles.directories
    default: break
    }
    if (mode == .hdf5 || mode == .keras) && getenv("FUZZ_HDF5_ISOLATED").map({ String(cString: $0) }) != "1" {
        setenv("WEIGHTS_HDF5_IN_PROCESS", "1", 1)
    }
    return 0
}

/// The HDF5 reader walks a file's structure in a forked child (HDF5Isolation.swift) precisely so that libhdf5 may
/// crash or hang there: the parent turns that into a `CheckpointError`. Inside the fuzzer, though, the child inherits
/// libFuzzer's handlers: an ASan report in libhdf5 (e.g. memcpy-param-overlap in H5HG_read) would write a crash
/// artifact from the child, and a hang would run into libFuzzer's timeout. So each forked child gets
///   * an ASan death callback that just `_exit(ForkedChild.sanitizerExit)` (the parent then reports "ended early"),
///   * the default SIGALRM action (the reader's own alarm, 15 s by default), and
///   * a 3 s CPU limit (SIGXCPU), so that a spinning libhdf5 ends well inside libFuzzer's -timeout.
/// `checkError` reports what the parent saw as soft findings.
enum ForkedChild {
    static let sanitizerExit: Int32 = 86
    static let cpuSeconds: rlim_t = 3

    static func install() {
        pthread_atfork(nil, nil) {
            sanitizerSetDeathCallback { _exit(ForkedChild.sanitizerExit) }
            signal(SIGALRM, SIG_DFL)
            var cpu = rlimit(rlim_cur: ForkedChild.cpuSeconds, rlim_max: ForkedChild.cpuSeconds + 1)
            setrlimit(Int32(RLIMIT_CPU.rawValue), &cpu)
            var core = rlimit(rlim_cur: 0, rlim_max: 0)
            setrlimit(Int32(RLIMIT_CORE.rawValue), &core)
        }
    }
}

@_silgen_name("__sanitizer_set_death_callback")
func sanitizerSetDeathCallback(_ callback: (@convention(c) () -> Void)?)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = UnsafeBufferPointer(start: data, count: size)
    let file = mode.file(for: input)
    let path = mode.place(file, input: input)
    SoftFindings.currentFile = file
    if let saveFile { SoftFindings.save(file, to: saveFile) }
    exercise(path: path, fileBytes: file)
    return 0
}

/// Opens `path` and loads every entry, checking the invariants above.
func exercise(path: String, fileBytes: [UInt8]) {
    let sd: StateDict
    do {
        // (HDF5Reader is `package` now: the hdf5 mode's forced signature makes sniffing pick it anyway.)
        sd = try Checkpoint.open(path)
    } catch {
        checkError(error, during: "open")
        return
    }
    // Touch what inspection touches: names, metadata renderings, totals.
    var sink = sd.totalBytes &+ sd.totalElements &+ sd.names.count
    for m in sd.metadata { sink &+= m.name.utf8.count &+ m.value.description.utf8.count }
    if let first = sd.tensors.first, let root = first.name.split(separator: ".").first, root != Substring(first.name) {
        do { sink &+= try sd.subtree(String(root)).tensors.count } catch { checkError(error, during: "subtree") }
    }

    var budget = maxLoadedBytes
    // Every tensor, if the dict is small enough for the round trip and all of it loads.
    var loaded: [Tensor]? = sd.totalBytes <= RoundTrip.maxBytes ? [] : nil
    for entry in sd.tensors {
        sink &+= entry.location.utf8.count
        let n = entry.byteCount
        guard n <= maxEntryBytes, n <= budget else { loaded = nil; continue }
        budget -= n
        let tensor: Tensor
        do {
            tensor = try entry.load()
        } catch {
            checkError(error, during: "load of '\(entry.name)'")
            loaded = nil
            continue
        }
        loaded?.append(tensor)
        sink &+= tensor.bytes.count
        guard strict else { continue }
        if tensor.dtype != entry.dtype || tensor.shape != entry.shape {
            invariant("entry '\(entry.name)' announced \(entry.dtype) \(entry.shape) but load() returned \(tensor.dtype) \(tensor.shape)")
        }
        // The span invariant (zero-copy bytes == load() bytes) needs `TensorEntry.span`, which is `package` since
        // the public-API cut; this separate package can no longer see it.
    }
    if let loaded { RoundTrip.check(sd, loaded: loaded) }
    blackHole(sink)
}

func checkError(_ error: any Error, during what: String) {
    guard strict else { return }
    guard let e = error as? CheckpointError else {
        invariant("\(what) threw \(type(of: error)), not a CheckpointError: \(error)")
    }
    let text = e.description
    if text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" || (0x7F...0x9F).contains($0.value) }) {
        SoftFindings.record("\(what) threw a CheckpointError whose description is not one printable line", text: text)
    }
    if text.utf8.count > 2000 {
        SoftFindings.record("\(what) threw a CheckpointError whose description is over 2000 bytes", text: text)
    }
    // The isolated HDF5 walk (see ForkedChild). A plain SIGSEGV / SIGBUS there is libhdf5 meeting a corrupt file,
    // which the isolation exists for, and is not reported.
    if e.message.contains("libhdf5 crashed (signal \(SIGILL))") || e.message.contains("libhdf5 crashed (signal \(SIGTRAP))") {
        SoftFindings.record("the isolated HDF5 walk trapped (SIGILL/SIGTRAP: a Swift runtime trap in our H5Walker code?)", text: text)
    } else if e.message.contains("exit status \(ForkedChild.sanitizerExit)") {
        SoftFindings.record("ASan stopped libhdf5 in the isolated HDF5 walk (contained)", text: text)
    } else if mode == .hdf5 && e.message.contains("libhdf5 crashed") && e.message.contains("while reading dataset") {
        // Contained by the reader, but worth a replay case: libhdf5 crashing in its data read.
        SoftFindings.record("libhdf5 crashed while reading a dataset (contained in the reader's child)", text: text)
    } else if e.message.contains("libhdf5 crashed (signal \(SIGXCPU))") {
        SoftFindings.record("libhdf5 spun over \(ForkedChild.cpuSeconds) s of CPU in the isolated HDF5 walk (contained; the reader allows 15 s by default)", text: text)
    }
}

/// Broken invariants that do not stop the run: the assembled file is saved once per kind of message to
/// FUZZ_SOFT_DIR (if set) as `soft-<hash>` with the message beside it in `soft-<hash>.txt`, and fuzzing goes on.
/// (Today: error descriptions that echo control characters from the file — newlines, escapes — to the terminal.)
enum SoftFindings {
    nonisolated(unsafe) static var seen = Set<String>()
    nonisolated(unsafe) static var currentFile: [UInt8] = []
    static let dir: String? = getenv("FUZZ_SOFT_DIR").map { String(cString: $0) }

    static func record(_ what: String, text: String) {
        guard let dir else { return }
        // Kind of message: without the file prefix, quoted parts and digits, and cut (back to a whole word) where
        // text echoed from the file starts: the first control or non-ASCII character outside quotes.
        var body = Substring(text)
        if let r = text.range(of: scratchPath + ": ") { body = text[r.upperBound...] }
        var kind = ""
        var quoted = false, cut = false
        for u in body.unicodeScalars {
            if u == "'" { if !quoted { kind += "'…'" }; quoted.toggle(); continue }
            if quoted { continue }
            if u.value < 0x20 || u.value > 0x7E { cut = true; break }
            if !("0"..."9").contains(u) { kind.unicodeScalars.append(u) }
        }
        if cut, let space = kind.lastIndex(of: " ") { kind = String(kind[..<space]) }
        kind = what + ": " + kind.prefix(80)
        guard seen.insert(kind).inserted, seen.count <= 200 else { return }
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in kind.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        let base = "\(dir)/soft-\(String(h, radix: 16))"
        save(currentFile, to: base)
        save(Array("\(what):\n\(visible(text))\n".utf8), to: base + ".txt")
        say("soft finding: \(what): \(visible(text)) -> \(base)\n")
    }

    static func save(_ bytes: [UInt8], to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        bytes.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }
}

/// `text` with control characters shown as `\u{…}`.
func visible(_ text: String) -> String {
    var out = ""
    for u in text.unicodeScalars {
        if u.value < 0x20 || (0x7F...0x9F).contains(u.value) { out += "\\u{\(String(u.value, radix: 16))}" } else { out.unicodeScalars.append(u) }
    }
    return out
}

/// Writes to standard error (fd 2) without touching the C `stderr` global.
func say(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { _ = write(2, $0.baseAddress, $0.count) }
}

func invariant(_ message: String) -> Never {
    say("fuzz invariant: \(message)\n")
    abort()
}

@inline(never)
func blackHole(_ x: Int) {
    if x == 0x5EED_F00D_5EED { say("") }
}

func writeFile(_ bytes: [UInt8], to path: String) {
    unlink(path)
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
        say("CheckpointFuzz: cannot create \(path): \(String(cString: strerror(errno)))\n")
        exit(70)
    }
    defer { close(fd) }
    bytes.withUnsafeBytes { b in
        var done = 0
        while done < b.count {
            let w = write(fd, b.baseAddress! + done, b.count - done)
            if w < 0 && errno == EINTR { continue }
            guard w > 0 else {
                say("CheckpointFuzz: cannot write \(path): \(String(cString: strerror(errno)))\n")
                exit(70)
            }
            done += w
        }
    }
}
