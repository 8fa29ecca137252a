#if canImport(Glibc)
import Glibc
#endif

/// An error that may go away if the same thing is tried again (a dropped connection, a busy
/// server), and how long the server asked us to wait first.
public protocol RetryableError: Error {
    var isTransient: Bool { get }
    /// The server's `Retry-After`, in seconds, when it gave one.
    var retryAfter: Double? { get }
}

extension RetryableError {
    public var retryAfter: Double? { nil }
}

/// When and how often to try an operation again: a value its owner passes in. The delay before
/// attempt n + 1 is `initialDelay · multiplier^(n-1)`, capped at `maximumDelay` and shortened at
/// random by up to `jitter` of itself; a server's `Retry-After` replaces it (up to
/// `longestRetryAfter`). Only transient errors are retried.
public struct RetryPolicy: Sendable, Equatable {
    /// Tries in all, the first included (1: no retry).
    public var attempts: Int
    public var initialDelay: Double
    public var multiplier: Double
    public var maximumDelay: Double
    /// The fraction of each delay that is random, so machines that failed together (a rack
    /// after a power cut) do not all ask again at the same instant.
    public var jitter: Double
    public var longestRetryAfter: Double

    public init(attempts: Int, initialDelay: Double, multiplier: Double = 2, maximumDelay: Double,
                jitter: Double = 0.2, longestRetryAfter: Double = 300) {
        self.attempts = max(1, attempts)
        self.initialDelay = initialDelay
        self.multiplier = multiplier
        self.maximumDelay = maximumDelay
        self.jitter = min(max(jitter, 0), 1)
        self.longestRetryAfter = longestRetryAfter
    }

    /// Registry requests: 5 tries, 1 s doubling to 30 s.
    public static let registry = RetryPolicy(attempts: 5, initialDelay: 1, maximumDelay: 30)
    /// S3 requests: 5 tries, 0.5 s doubling to 8 s (volume syncs run many small requests).
    public static let s3 = RetryPolicy(attempts: 5, initialDelay: 0.5, maximumDelay: 8)
    /// Whole boot attempts of the boot agent: 3, the second after 20 s, the third after 45 s.
    public static let bootAttempts = RetryPolicy(attempts: 3, initialDelay: 20, multiplier: 2.25, maximumDelay: 45)
    /// One try only (a mirror: the next host is the fallback; a best-effort report).
    public static let once = RetryPolicy(attempts: 1, initialDelay: 0, maximumDelay: 0)

    /// Seconds to wait before try `attempt + 1` after try `attempt` failed; `random` in 0..<1.
    public func delay(after attempt: Int, retryAfter: Double?, random: Double) -> Double {
        if let retryAfter { return min(max(0, retryAfter), longestRetryAfter) }
        var base = initialDelay
        for _ in 1..<max(1, attempt) where base < maximumDelay { base *= multiplier }
        base = min(base, maximumDelay)
        return base * (1 - jitter * min(max(random, 0), 1))
    }

    /// Whether an HTTP status is worth asking again for: throttling and server errors.
    public static func isTransient(status: Int) -> Bool { status == 429 || status >= 500 }

    /// What `run` tells its caller before it waits.
    public struct Retry<E: Error> {
        /// The try that failed (1-based) and the tries allowed.
        public var attempt: Int
        public var attempts: Int
        public var error: E
        public var delay: Double
    }

    /// Runs `body` (given the try's number, from 1) until it succeeds, fails for good, or the
    /// tries run out; the last error is thrown. `willRetry` hears of each wait before it starts.
    public func run<T, E: RetryableError>(
        willRetry: (Retry<E>) -> Void = { _ in },
        sleep: (Double) -> Void = RetryPolicy.sleep(seconds:),
        _ body: (Int) throws(E) -> T
    ) throws(E) -> T {
        var attempt = 1
        while true {
            do {
                return try body(attempt)
            } catch {
                guard error.isTransient, attempt < attempts else { throw error }
                let wait = delay(after: attempt, retryAfter: error.retryAfter, random: Double.random(in: 0..<1))
                willRetry(Retry(attempt: attempt, attempts: attempts, error: error, delay: wait))
                sleep(wait)
                attempt += 1
            }
        }
    }

    /// Sleeps for `seconds` (fractions too), through signals.
    public static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&ts, &remaining) != 0 && errno == EINTR { ts = remaining }
    }
}
