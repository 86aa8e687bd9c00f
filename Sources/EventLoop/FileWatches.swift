import Glibc

/// Modification watches on files, all through one inotify instance per loop. An instance
/// per watched file would run into `fs.inotify.max_user_instances` (128 by default) long
/// before a host's VMs run out; watches per instance are limited far higher
/// (`max_user_watches`). Loop-confined, like the loop's other descriptors.
package final class FileWatches {
    /// One watch: the kernel's watch descriptor and which handler on it.
    package struct Watch: Hashable, Sendable {
        let descriptor: Int32
        let handler: UInt64
    }

    private let loop: EventLoop
    private var notify: WatchedDescriptor?
    /// Handlers by watch descriptor: the kernel hands out one descriptor per inode, so two
    /// watches of one file share it.
    private var handlers: [Int32: [UInt64: () -> Void]] = [:]
    private var nextHandler: UInt64 = 1

    init(loop: EventLoop) {
        self.loop = loop
    }

    /// Calls `handler` on the loop whenever the file at `path` is written (IN_MODIFY).
    package func watchModifications(of path: String, _ handler: @escaping () -> Void) throws(SystemCallError) -> Watch {
        loop.assertInLoop()
        let notify = try instance()
        let descriptor = inotify_add_watch(notify.fd, path, UInt32(IN_MODIFY))
        guard descriptor >= 0 else { throw SystemCallError("inotify_add_watch(\(path))", errno: errno) }
        let id = nextHandler
        nextHandler += 1
        handlers[descriptor, default: [:]][id] = handler
        return Watch(descriptor: descriptor, handler: id)
    }

    /// Idempotent; the kernel's watch goes with the last handler on it.
    package func cancel(_ watch: Watch) {
        loop.assertInLoop()
        guard handlers[watch.descriptor]?.removeValue(forKey: watch.handler) != nil else { return }
        if handlers[watch.descriptor]?.isEmpty == true {
            handlers.removeValue(forKey: watch.descriptor)
            if let notify { _ = inotify_rm_watch(notify.fd, watch.descriptor) }
        }
    }

    private func instance() throws(SystemCallError) -> WatchedDescriptor {
        if let notify { return notify }
        let fd = inotify_init1(Int32(O_NONBLOCK | O_CLOEXEC))
        guard fd >= 0 else { throw SystemCallError("inotify_init1", errno: errno) }
        let notify = WatchedDescriptor(adopting: fd, loop: loop)
        notify.onReady = { [unowned self] _ in drain() }
        try notify.setInterest(.read)
        self.notify = notify
        return notify
    }

    /// Reads every pending event and calls each watched file's handlers once per read.
    private func drain() {
        guard let notify else { return }
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 8) { buffer in
            while true {
                let count = Glibc.read(notify.fd, buffer.baseAddress, buffer.count)
                guard count > 0 else { return }
                var modified: [Int32] = []
                var overflowed = false
                var offset = 0
                // struct inotify_event: wd, mask, cookie, len, then len bytes of name.
                while offset + 16 <= count {
                    let descriptor = buffer.load(fromByteOffset: offset, as: Int32.self)
                    let mask = buffer.load(fromByteOffset: offset + 4, as: UInt32.self)
                    let nameLength = Int(buffer.load(fromByteOffset: offset + 12, as: UInt32.self))
                    offset += 16 + nameLength
                    if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                        // The kernel's queue was full and events were dropped: any file may have changed.
                        overflowed = true
                    } else if mask & UInt32(IN_IGNORED) != 0 {
                        // The file is gone and the kernel dropped the watch; its number may
                        // come back for another file.
                        handlers.removeValue(forKey: descriptor)
                    } else if mask & UInt32(IN_MODIFY) != 0, !modified.contains(descriptor) {
                        modified.append(descriptor)
                    }
                }
                if overflowed { modified = Array(handlers.keys) }
                for descriptor in modified {
                    for handler in handlers[descriptor]?.values.map({ $0 }) ?? [] { handler() }
                }
            }
        }
    }
}
