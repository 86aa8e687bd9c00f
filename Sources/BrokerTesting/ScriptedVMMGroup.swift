import EventLoop
import Foundation
import Glibc
import Synchronization
import VFIOWatch

/// One thread with one epoll serving any number of `ScriptedVMM`s, so a thousand of them
/// cost a thousand sockets, not a thousand threads. Handlers run inline on that thread and
/// never block (output the socket does not take waits for EPOLLOUT): one slow broker
/// cannot stall the other peers. The peers' accessors may be called from any thread.
package final class ScriptedVMMGroup: Sendable {
    /// The group tests share; it lives as long as the process.
    package static let shared = ScriptedVMMGroup()

    private let epoll = Epoll()
    /// Wakes the loop to stop it.
    private let wakeFD: Int32
    private let registered = Mutex<[UInt64: Registration]>([:])
    private let nextToken = Atomic<UInt64>(1)
    /// Replies sent later (`ScriptedReply.delayed`), earliest first.
    private let timers = Mutex<[DelayedWrite]>([])
    private let stopping = Atomic<Bool>(false)
    private static let wakeToken: UInt64 = 0

    enum Role: Sendable { case listener, connection }

    struct Registration: Sendable {
        let vmm: ScriptedVMM
        let role: Role
    }

    struct DelayedWrite: Sendable {
        let due: UInt64
        let vmm: ScriptedVMM
        let connection: Int
        let bytes: [UInt8]
    }

    package init() {
        wakeFD = (try? EventFD.makeEventFD()) ?? -1
        precondition(wakeFD >= 0, "eventfd: errno \(errno)")
        epoll.add(wakeFD, token: Self.wakeToken)
        Thread { [self] in run() }.start()
    }

    /// Stops the thread; the peers must have been closed.
    package func close() {
        stopping.store(true, ordering: .releasing)
        try? EventFD.signal(wakeFD)
    }

    /// A QEMU-like peer listening on a unix socket at `path` (an old socket file is replaced).
    package func listen(at path: String, script: VMMScript = VMMScript()) throws(ScriptedVMM.Failure) -> ScriptedVMM {
        try ScriptedVMM(group: self, path: path, script: script)
    }

    /// A peer serving `fd`, one end of a connected stream socket (a socketpair), greeting at once.
    package func serve(connected fd: Int32, script: VMMScript = VMMScript()) -> ScriptedVMM {
        ScriptedVMM(group: self, connected: fd, script: script)
    }

    // MARK: for the peers

    func makeToken() -> UInt64 { nextToken.wrappingAdd(1, ordering: .relaxed).oldValue }

    func register(_ fd: Int32, token: UInt64, _ vmm: ScriptedVMM, _ role: Role) {
        registered.withLock { $0[token] = Registration(vmm: vmm, role: role) }
        epoll.add(fd, token: token)
    }

    func unregister(_ fd: Int32, token: UInt64) {
        epoll.remove(fd)
        _ = registered.withLock { $0.removeValue(forKey: token) }
    }

    /// Keeps a listener registered without accepting (QEMU's monitor serves one client at a time).
    func setAccepting(_ fd: Int32, token: UInt64, _ accepting: Bool) {
        epoll.modify(fd, token: token, interest: accepting ? Epoll.readable : 0)
    }

    /// Whether a connection also waits to be writable (it has output the socket did not take).
    func setWaitingToWrite(_ fd: Int32, token: UInt64, _ waiting: Bool) {
        epoll.modify(fd, token: token, interest: waiting ? Epoll.readable | Epoll.writable : Epoll.readable)
    }

    /// Runs on the loop thread only.
    func schedule(_ write: DelayedWrite) {
        timers.withLock { timers in
            let index = timers.firstIndex { $0.due > write.due } ?? timers.endIndex
            timers.insert(write, at: index)
        }
    }

    // MARK: the loop

    private func run() {
        // One read buffer for every peer: a thousand idle peers hold no buffers of their own.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 8)
        let control = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
        defer {
            buffer.deallocate()
            control.deallocate()
        }
        while !stopping.load(ordering: .acquiring) {
            let ready = epoll.wait(capacity: 64, timeoutMilliseconds: timeoutUntilNextTimer())
            for (token, events) in ready where token != Self.wakeToken {
                guard let registration = registered.withLock({ $0[token] }) else { continue }
                switch registration.role {
                case .listener:
                    registration.vmm.acceptReady()
                case .connection:
                    if events & Epoll.writable != 0 { registration.vmm.writeReady(token: token) }
                    if events & ~Epoll.writable != 0 { registration.vmm.readReady(token: token, buffer: buffer, control: control) }
                }
            }
            fireDueTimers()
        }
        Glibc.close(wakeFD)
        Glibc.close(epoll.fd)
    }

    private func timeoutUntilNextTimer() -> Int32 {
        guard let due = timers.withLock({ $0.first?.due }) else { return -1 }
        let now = MonotonicClock.nanoseconds()
        return due <= now ? 0 : Int32(min((due - now + 999_999) / 1_000_000, 60_000))
    }

    private func fireDueTimers() {
        let now = MonotonicClock.nanoseconds()
        let due = timers.withLock { timers in
            let count = timers.prefix { $0.due <= now }.count
            defer { timers.removeFirst(count) }
            return Array(timers.prefix(count))
        }
        for write in due { write.vmm.send(write.bytes, onConnection: write.connection) }
    }
}
