import CWyrcanSys
#if canImport(Glibc)
import Glibc
#endif

/// Console progress for layer transfers: one live status line on a terminal, plain lines per
/// finished layer otherwise (serial consoles, logs). Safe to update from several threads.
public final class TransferProgress: Sendable {
    struct State {
        var done: [Int64]
        var finished: [Bool]
        var lastDraw: Double = 0
    }

    let title: String
    let sizes: [Int64]
    let labels: [String]
    let interactive: Bool
    let started: Double
    let quiet: Bool
    private let state: Locked<State>

    public init(title: String, sizes: [Int64], labels: [String], quiet: Bool = false) {
        self.title = title
        self.sizes = sizes
        self.labels = labels
        self.quiet = quiet
        self.interactive = isatty(2) == 1
        self.started = Self.now()
        self.state = Locked(State(done: sizes.map { _ in 0 }, finished: sizes.map { _ in false }))
    }

    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static func megabytes(_ bytes: Int64) -> String { "\(tenths(Double(bytes) / 1_000_000)) MB" }

    /// One decimal, without Foundation's formatters.
    public static func tenths(_ value: Double) -> String {
        let t = Int((value * 10).rounded())
        return "\(t / 10).\(t % 10)"
    }

    static func emit(_ text: String) {
        var bytes = Array(text.utf8)
        _ = write(2, &bytes, bytes.count)
    }

    public func update(layer: Int, bytes: Int64) {
        guard !quiet else { return }
        let line: String? = state.withLock { s in
            s.done[layer] = bytes
            let now = Self.now()
            guard interactive, now - s.lastDraw > 0.2 else { return nil }
            s.lastDraw = now
            return statusLine(s, now: now)
        }
        if let line { Self.emit("\r\u{1B}[K" + line) }
    }

    public func finished(layer: Int) {
        guard !quiet else { return }
        let text: String = state.withLock { s in
            s.done[layer] = sizes[layer]
            s.finished[layer] = true
            let line = "  layer \(layer + 1)/\(sizes.count) \(labels[layer]) \(Self.megabytes(sizes[layer])) done at \(Self.tenths(Self.now() - started)) s"
            return interactive ? "\r\u{1B}[K" + line + "\n" + statusLine(s, now: Self.now()) : line + "\n"
        }
        Self.emit(text)
    }

    public func complete() {
        guard !quiet else { return }
        let total = sizes.reduce(0, +)
        let elapsed = max(Self.now() - started, 0.001)
        let rate = Double(total) / elapsed / 1_000_000
        Self.emit((interactive ? "\r\u{1B}[K" : "") + "  \(title): \(Self.megabytes(total)) in \(Self.tenths(elapsed)) s (\(Self.tenths(rate)) MB/s)\n")
    }

    private func statusLine(_ s: State, now: Double) -> String {
        let done = s.done.reduce(0, +)
        let total = sizes.reduce(0, +)
        let rate = Double(done) / max(now - started, 0.001) / 1_000_000
        let finished = s.finished.filter { $0 }.count
        let line = "● \(title): \(Self.megabytes(done)) / \(Self.megabytes(total)), \(finished)/\(sizes.count) layers, \(Self.tenths(rate)) MB/s"
        // Cut to the terminal's width: a wrapped line would not be erased by the next redraw.
        let columns = Int(wyr_terminal_columns(2))
        return columns > 1 && line.count >= columns ? String(line.prefix(columns - 1)) : line
    }

    /// Erases a live status line, if one may be on the terminal (before an error message).
    public static func clearLine() {
        if isatty(2) == 1 { emit("\r\u{1B}[K") }
    }
}
