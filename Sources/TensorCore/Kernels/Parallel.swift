import Dispatch
import Foundation

/// A pointer that may cross into `concurrentPerform` workers. Each worker must write a disjoint range.
@usableFromInline
struct SendablePointer<T>: @unchecked Sendable {
    @usableFromInline let p: UnsafeMutablePointer<T>
    @inlinable init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}

@usableFromInline
struct SendableConstPointer<T>: @unchecked Sendable {
    @usableFromInline let p: UnsafePointer<T>
    @inlinable init(_ p: UnsafePointer<T>) { self.p = p }
}

/// Splits element-wise work over the machine's cores.
package enum Parallel {
    /// Worker count for element-wise loops: one per core, or `WEIGHTS_NUM_THREADS` when set.
    public static let workers: Int = {
        if let s = ProcessInfo.processInfo.environment["WEIGHTS_NUM_THREADS"], let n = Int(s), n >= 1 { return n }
        return Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Calls `body(range)` for disjoint chunks that cover `0..<count`, in parallel when the total work
    /// (`count × costPerItem`, roughly in flops) is large enough to pay for the dispatch.
    @inlinable
    public static func forEachChunk(_ count: Int, costPerItem: Int = 1, _ body: @Sendable (Range<Int>) -> Void) {
        if count <= 0 { return }
        let work = count &* Swift.max(1, costPerItem)
        let chunks = Swift.min(count, work < 32_768 ? 1 : workers)
        if chunks <= 1 { body(0..<count); return }
        let per = (count + chunks - 1) / chunks
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = c * per
            let hi = Swift.min(count, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }
}

