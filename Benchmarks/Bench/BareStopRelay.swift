import Glibc
import VFIOWatch

/// The floor under the broker's error → stop: a thread blocked in `poll` on one descriptor
/// (an eventfd, or an inotify watch on a trace log) that, once woken, drains it and writes
/// `stop` to a scripted VMM, with no QMP parsing, policy or state in between.
final class BareStopRelay: @unchecked Sendable {
    // @unchecked: the descriptors are set once in init; the thread only reads them.
    static let stopCommand = Array(#"{"execute": "stop"}"#.utf8) + [13, 10]

    private let trigger: Int32
    /// A file to read to its end on each wake (the trace log), or -1.
    private let follow: Int32
    private let output: Int32
    private let wake: Int32

    init(trigger: Int32, follow: Int32 = -1, output: Int32) throws {
        self.trigger = trigger
        self.follow = follow
        self.output = output
        wake = try EventFD.makeEventFD()
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        pthread_create(&thread, nil, { raw in
            Unmanaged<BareStopRelay>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box.toOpaque())
        pthread_detach(thread)
    }

    /// Ends the thread; the descriptors stay the caller's.
    func stop() {
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 65536)
        // The VMM's replies are read and dropped, so its writes never block its thread.
        var descriptors = [trigger, wake, output].map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        while true {
            guard poll(&descriptors, 3, -1) > 0 else { continue }
            if descriptors[1].revents != 0 { break }
            if descriptors[2].revents != 0 { _ = recv(output, &buffer, buffer.count, Int32(MSG_DONTWAIT)) }
            guard descriptors[0].revents != 0 else { continue }
            _ = read(trigger, &buffer, buffer.count)
            if follow >= 0 { while read(follow, &buffer, buffer.count) > 0 {} }
            _ = Self.stopCommand.withUnsafeBytes { send(output, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        close(wake)
    }
}
