import Glibc

/// Which sanitizer this test run is built with (`make sanitize`); the broker binary it
/// starts (QMP_BROKER_BIN) is then instrumented the same way. Each runtime is linked into
/// the instrumented executable and exports its entry point.
enum Sanitizer {
    static let address = dlsym(nil, "__asan_init") != nil
    static let thread = dlsym(nil, "__tsan_init") != nil

    /// ASan holds freed memory back (its quarantine, up to 256 MB) to catch use after free,
    /// so RSS grows with every allocation under it and says nothing about leaks there.
    static var residentSizeIsMeaningful: Bool { !address }

    /// For the few bounds on a whole workload (not on one step): instrumented code runs
    /// several times slower, ThreadSanitizer's most.
    static func scaled(_ seconds: Double) -> Double { seconds * (thread ? 4 : address ? 2 : 1) }
}
