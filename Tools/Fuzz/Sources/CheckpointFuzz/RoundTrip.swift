// Round trip: a state dict that opened and loaded completely is written with `SafetensorsWriter` (which copies
// verbatim spans file-to-file and loads everything else) and read back; it must come back identical.
import Weights
#if canImport(Glibc)
import Glibc
#endif

enum RoundTrip {
    /// On with FUZZ_STRICT unless FUZZ_ROUNDTRIP=0.
    static let enabled: Bool = strict && getenv("FUZZ_ROUNDTRIP").map { String(cString: $0) } != "0"
    /// Dicts larger than this are not written (the point is names, dtypes, shapes and span copies, not volume).
    static let maxBytes = 16 << 20
    static let path: String = scratchPath + ".safetensors"

    /// `loaded` holds the tensors of `sd`, in order.
    static func check(_ sd: StateDict, loaded: [Tensor]) {
        guard enabled, sd.totalBytes <= maxBytes, loaded.count == sd.tensors.count else { return }
        unlink(path)
        defer { unlink(path) }
        do {
            let out = try AtomicOutput(destination: path)
            try SafetensorsWriter.write(sd, to: out, dtype: nil, metadata: [:])
            try out.commit()
        } catch {
            // Refusals (duplicate or empty names, '__metadata__') are fine; they must still be clean errors.
            checkError(error, during: "safetensors write")
            return
        }
        let back: StateDict
        do {
            back = try Checkpoint.open(path)
        } catch {
            invariant("the safetensors file written from a dict that loaded does not open: \(visible("\(error)"))")
        }
        guard back.format == .safetensors, back.names == sd.names else {
            invariant("safetensors round trip changed the names: \(sd.names.prefix(5).map(visible)) -> \(back.names.prefix(5).map(visible))")
        }
        for (original, entry) in zip(loaded, back.tensors) {
            let again: Tensor
            do {
                again = try entry.load()
            } catch {
                invariant("safetensors round trip: '\(visible(entry.name))' does not load back: \(visible("\(error)"))")
            }
            if again.dtype != original.dtype || again.shape != original.shape || again.bytes != original.bytes {
                invariant("safetensors round trip changed '\(visible(entry.name))': \(original.dtype) \(original.shape) "
                          + "-> \(again.dtype) \(again.shape), bytes equal: \(again.bytes == original.bytes)")
            }
        }
    }
}
