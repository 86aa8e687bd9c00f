/// When a failed connect to the VMM's socket is worth a log line: the first failure, a
/// different errno, and then once a minute while it lasts, so that a wrong path is plain
/// to see without the retries (every 50 ms to 1 s) flooding the log.
struct ConnectFailureLog {
    static let interval = 60.0

    private var lastErrno: Int32?
    private var lastLogged = -Double.infinity
    private(set) var failuresSinceLogged = 0

    /// Whether to log this failure (at monotonic time `now`).
    mutating func shouldLog(errno: Int32, now: Double) -> Bool {
        failuresSinceLogged += 1
        guard errno != lastErrno || now - lastLogged >= Self.interval else { return false }
        lastErrno = errno
        lastLogged = now
        return true
    }

    /// The next logged failure counts from here.
    mutating func logged() { failuresSinceLogged = 0 }

    /// Connected: a later failure is news again.
    mutating func reset() { self = ConnectFailureLog() }
}
