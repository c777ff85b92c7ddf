import Foundation

/// A value derived from parameters (e.g. convolution weights with batch norm folded in), computed on first use.
///
/// Layers hold one in a stored property and replace it with a fresh instance in `didSet` of every parameter it
/// depends on, so a copy of a model never sees a stale value and setting a weight invalidates exactly the
/// layers that use it. Thread-safe: concurrent forwards compute the value once. Not a parameter: its mirror is
/// empty so parameter-coverage walks skip it.
package final class DerivedCache<Value: Sendable>: @unchecked Sendable, CustomReflectable {
    private let lock = NSLock()
    private var value: Value?

    public init() {}

    public func get(_ make: () -> Value) -> Value {
        lock.lock()
        defer { lock.unlock() }
        if let value { return value }
        let v = make()
        value = v
        return v
    }

    /// The value if it has been computed, without computing it (for tests).
    public var cached: Value? {
        lock.lock()
        defer { lock.unlock() }
        return value
    }

    public var customMirror: Mirror { Mirror(self, children: [:]) }
}
