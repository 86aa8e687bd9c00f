import Glibc

/// A file descriptor with one owner: closed exactly once, when the owner consumes it with
/// `close()` or drops it. Moving it hands the duty to close over; it cannot be copied, so no
/// two places can close the same number (a closed number is soon reused by the kernel).
package struct OwnedFD: ~Copyable {
    package let raw: Int32

    package init(adopting raw: Int32) {
        self.raw = raw
    }

    /// Gives the number up without closing it (the caller now owns it).
    package consuming func release() -> Int32 {
        let raw = self.raw
        discard self
        return raw
    }

    package consuming func close() {
        _ = Glibc.close(raw)
        discard self
    }

    deinit {
        _ = Glibc.close(raw)
    }
}
