import EventLoop
import Glibc
import KernelTracepoint
import Logging
import Testing
import VFIOWatch

/// The perf side against this machine's kernel. `ras:aer_event` needs AER hardware (or the
/// nested host of `make host-e2e`), so the same code is proven here on a tracepoint any
/// process can fire, `sched:sched_process_exec`, which also carries a `__data_loc` string.
/// Needs root (or CAP_PERFMON) and a mounted tracefs: `/sys/kernel/tracing`, or the
/// directory in `QMP_BROKER_TEST_TRACEFS`.
@Suite(.serialized) struct TracepointSubscriptionTests {
    private static var tracefsDirectories: [String] {
        (getenv("QMP_BROKER_TEST_TRACEFS").map { [String(cString: $0)] } ?? []) + Tracefs.directories
    }

    @Test func hearsARealTracepointOnEveryCPU() throws {
        let format: TracepointFormat
        do throws(TracepointError) {
            format = try Tracefs.format(system: "sched", event: "sched_process_exec", in: Self.tracefsDirectories)
        } catch {
            try Test.cancel("no tracefs here: \(error)")
        }
        let filename = try #require(format.field(named: "filename"))
        let pidField = try #require(format.field(named: "pid"))
        let loop = EventLoopGroup.shared.next()
        let execs = Mailbox<(String, Int32, UInt64)>()
        let subscription = LoopBound(TracepointSubscription(loop: loop, format: format, logger: Logger(label: "test"), onRecord: { raw, emitted in
            loop.assertInLoop()
            let record = TracepointRecord(raw)
            guard let name = record.string(filename), let pid = record.unsigned(pidField) else { return }
            execs.post((name, Int32(truncatingIfNeeded: pid), MonotonicClock.nanoseconds() &- emitted))
        }, onLost: { _ in }), loop: loop)
        do throws(TracepointError) {
            try loop.runAndWait { () throws(TracepointError) in try subscription.value.start() }
        } catch {
            if case .system(let failure) = error, [EPERM, EACCES, ENOSYS].contains(failure.errno) {
                try Test.cancel("perf refuses system-wide tracepoints here: \(error)")
            }
            throw error
        }
        defer { loop.runAndWait { subscription.value.cancel() } }

        var child: pid_t = 0
        let path = "/bin/true"
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        defer { free(argv[0]) }
        try #require(posix_spawn(&child, path, nil, nil, &argv, environ) == 0)
        var status: Int32 = 0
        waitpid(child, &status, 0)

        var heard: (String, Int32, UInt64)?
        while let exec = execs.next(within: .seconds(5)) {
            if exec.1 == child { heard = exec; break }
        }
        let exec = try #require(heard, "no sched_process_exec record for pid \(child)")
        #expect(exec.0.hasSuffix("true"), "\(exec.0)")
        // The sample's time is CLOCK_MONOTONIC, the loop's clock: the delay is real.
        let milliseconds = Double(exec.2) / 1e6
        print("sched_process_exec: kernel -> loop \(milliseconds) ms")
        #expect(milliseconds < 1000)
    }

    /// Where tracefs lacks the tracepoint (no CONFIG_PCIEAER), the monitor says so and the
    /// broker keeps polling.
    @Test func aKernelWithoutAERSaysSo() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let monitor = AERTracepointMonitor(loop: EventLoopGroup.shared.next(), directories: [directory.path],
                                           logger: Logger(label: "test"), handler: { _, _ in }, onLost: { _ in })
        let loop = monitor.loop
        let bound = LoopBound(monitor, loop: loop)
        #expect(throws: TracepointError.notFound(event: "ras:aer_event", searched: [directory.path])) {
            try loop.runAndWait { () throws(TracepointError) in try bound.value.start() }
        }
        #expect(loop.runAndWait { bound.value.isRunning } == false)
    }

    /// A format whose ID the kernel does not know: perf refuses, and nothing stays open.
    @Test func aTracepointTheKernelRefusesLeavesNothingOpen() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.makeDirectory("events/ras/aer_event")
        try directory.write("events/ras/aer_event/format", "name: aer_event\nID: 4000000000\nformat:\n"
            + "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
            + "\tfield:__data_loc char[] dev_name;\toffset:8;\tsize:4;\tsigned:0;\n"
            + "\tfield:u32 status;\toffset:12;\tsize:4;\tsigned:0;\n"
            + "\tfield:u8 severity;\toffset:16;\tsize:1;\tsigned:0;\n")
        let openBefore = Self.openDescriptors()
        let loop = EventLoopGroup.shared.next()
        let bound = LoopBound(AERTracepointMonitor(loop: loop, directories: [directory.path], logger: Logger(label: "test"),
                                                   handler: { _, _ in }, onLost: { _ in }), loop: loop)
        #expect(throws: TracepointError.self) {
            try loop.runAndWait { () throws(TracepointError) in try bound.value.start() }
        }
        #expect(Self.openDescriptors() == openBefore)
    }

    /// Perf event descriptors this process holds. Only those: the other suites run in the
    /// same process at the same time and open and close sockets and files all along.
    private static func openDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(directory) }
        var count = 0
        var target = [CChar](repeating: 0, count: 256)
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let length = readlink("/proc/self/fd/\(name)", &target, target.count - 1)
            guard length > 0 else { continue }
            if String(decoding: target[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) == "anon_inode:[perf_event]" {
                count += 1
            }
        }
        return count
    }
}
