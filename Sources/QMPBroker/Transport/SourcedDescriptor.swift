import Glibc

/// A descriptor watched by Dispatch sources, closed only once nothing can use it.
///
/// Dispatch's rule: a descriptor must stay open until every source on it has been
/// cancelled and its cancel handler has run; closing earlier lets the number be reused
/// while epoll still watches it. The owner holds one reference, each source another
/// (released by its cancel handler); the last release closes the descriptor.
/// Confined to one queue, like the sources whose handlers release it.
final class SourcedDescriptor {
    let fd: Int32
    private var references = 1

    init(_ fd: Int32) {
        self.fd = fd
    }

    /// Call before creating a source on `fd`; its cancel handler must call `release()`.
    func retainForSource() {
        precondition(references > 0, "source created on a closed descriptor")
        references += 1
    }

    func release() {
        precondition(references > 0, "descriptor released more often than retained")
        references -= 1
        if references == 0 { _ = Glibc.close(fd) }
    }
}
