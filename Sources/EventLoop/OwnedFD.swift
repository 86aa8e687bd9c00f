import Glibc

/// A file descriptor with one owner: closed exactly once, when the owner consumes it with
/// `close()` or drops it. Moving it hands the duty to close over; it cannot be copied, so no
/// two places can close the same number (a closed number is soon reused by the kernel).
public struct OwnedFD: ~Copyable {
    public let raw: Int32

    public init(adopting raw: Int32) {
        self.raw = raw
    }

    /// Gives the number up without closing it (the caller now owns it).
    public consuming func release() -> Int32 {
        let raw = self.raw
        discard self
        return raw
    }

    public consuming func close() {
        _ = Glibc.close(raw)
        discard self
    }

    deinit {
        _ = Glibc.close(raw)
    }
}
