import BrokerTesting

/// Runs `body` with a fresh directory under /tmp, removed afterwards. A scope rather than
/// the directory's `deinit`, so it cannot vanish while a store still reopens files in it.
func withTemporaryDirectory<T>(_ body: (TemporaryDirectory) throws -> T) throws -> T {
    let directory = try TemporaryDirectory(prefix: "broker-state")
    defer { directory.remove() }
    return try body(directory)
}
