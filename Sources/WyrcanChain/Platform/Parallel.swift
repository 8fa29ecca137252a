import Dispatch

/// A small fixed-width worker pool over Dispatch: layer downloads and volume transfers run
/// concurrently without async (the boot agent has no need for a runtime beyond threads).
public enum Parallel {
    /// Runs `body` for 0..<count on up to `width` threads and returns the results in order;
    /// the first error (by index) is thrown after every started task has finished.
    public static func map<T: Sendable, E: Error>(
        _ count: Int, width: Int, _ body: @escaping @Sendable (Int) throws(E) -> T
    ) throws(E) -> [T] {
        let results = Slots<Result<T, E>>(count)
        let group = DispatchGroup()
        let width = DispatchSemaphore(value: max(1, width))
        for i in 0..<count {
            width.wait()
            DispatchQueue.global().async(group: group) {
                defer { width.signal() }
                let r: Result<T, E>
                do throws(E) { r = .success(try body(i)) } catch { r = .failure(error) }
                results.set(i, r)
            }
        }
        group.wait()
        var out: [T] = []
        out.reserveCapacity(count)
        for r in results.values {
            switch r! {
            case .success(let v): out.append(v)
            case .failure(let e): throw e
            }
        }
        return out
    }

    /// Result slots written by worker threads under a lock.
    final class Slots<T>: @unchecked Sendable {
        private(set) var values: [T?]
        private let lock = DispatchSemaphore(value: 1)
        init(_ n: Int) { values = Array(repeating: nil, count: n) }
        func set(_ i: Int, _ value: T) {
            lock.wait()
            values[i] = value
            lock.signal()
        }
    }
}

/// A value shared between threads, guarded by a lock.
public final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = DispatchSemaphore(value: 1)
    public init(_ value: Value) { self.value = value }
    public func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.wait()
        defer { lock.signal() }
        return body(&value)
    }
}
