import CVFIO
import EventLoop
import Glibc
import KernelTracepoint
import Logging

/// One kernel tracepoint, heard on every online CPU through perf, as rasdaemon hears
/// `ras:aer_event`: `perf_event_open(PERF_TYPE_TRACEPOINT, config = the tracepoint's id,
/// pid -1, cpu)` per CPU, each with a mapped ring buffer whose descriptor is registered
/// with the loop. The kernel wakes the loop per record; `onRecord` gets each record's
/// raw bytes (valid during the call only) and when the kernel took it (CLOCK_MONOTONIC
/// nanoseconds), `onLost` the number of records the kernel dropped because a ring was full.
///
/// Loop-confined: `start()`, `cancel()` and the callbacks run on the loop; nothing blocks
/// (the rings are memory; no read(2) is made). CPUs brought online after `start()` are
/// not subscribed: AER errors are handled in a kernel thread that may run on any CPU,
/// so a broker on a host that hotplugs CPUs keeps its sysfs poll as the safety net.
package final class TracepointSubscription {
    package let loop: EventLoop
    package let format: TracepointFormat
    private let logger: Logger
    private let onRecord: (UnsafeRawBufferPointer, UInt64) -> Void
    private let onLost: (UInt64) -> Void
    private var rings: [PerfRing] = []
    private var walker = PerfRingWalker()

    /// Data pages per CPU (a power of two): 32 KiB holds hundreds of AER records, far more
    /// than one error storm between two loop turns.
    static let dataPages = 8

    package init(loop: EventLoop, format: TracepointFormat, logger: Logger,
                onRecord: @escaping (UnsafeRawBufferPointer, UInt64) -> Void, onLost: @escaping (UInt64) -> Void) {
        self.loop = loop
        self.format = format
        self.logger = logger
        self.onRecord = onRecord
        self.onLost = onLost
    }

    package var isRunning: Bool { !rings.isEmpty }

    /// Subscribes on every CPU in `cpus` (default: those online). All or nothing: a CPU
    /// that refuses undoes the others.
    package func start(cpus given: [Int]? = nil) throws(TracepointError) {
        loop.assertInLoop()
        guard rings.isEmpty else { return }
        let cpus: [Int]
        if let given { cpus = given } else { cpus = try Self.onlineCPUs() }
        guard !cpus.isEmpty else { throw .noCPUs }
        do throws(TracepointError) {
            for cpu in cpus {
                let ring = try PerfRing(tracepoint: format.id, cpu: cpu, dataPages: Self.dataPages, loop: loop)
                rings.append(ring)
                ring.descriptor.onReady = { [unowned self, unowned ring] readiness in drain(ring, readiness) }
                do {
                    try ring.descriptor.setInterest(.read)
                } catch {
                    throw TracepointError.system(SystemCallError("epoll_ctl(perf event, cpu \(cpu))", errno: error.errno))
                }
            }
        } catch {
            cancel()
            throw error
        }
    }

    /// Unsubscribes on every CPU. Idempotent.
    package func cancel() {
        rings.forEach { $0.close() }
        rings = []
    }

    /// Reads everything the ring holds and hands the space back to the kernel.
    private func drain(_ ring: PerfRing, _ readiness: Readiness) {
        let head = cvfio_perf_data_head(ring.controlPage)
        let walk = walker.walk(ring.data, tail: ring.tail, head: head) { record in
            if let sample = record.timedRawSample {
                onRecord(sample.raw, sample.nanoseconds)
            } else if let lost = record.lostCount {
                onLost(lost)
            }
        }
        if walk.corrupt {
            logger.warning("perf ring of \(format.name) held an unreadable record; the rest was skipped",
                           metadata: ["cpu": "\(ring.cpu)"])
            onLost(1)
        }
        ring.tail = walk.tail
        cvfio_perf_set_data_tail(ring.controlPage, walk.tail)
        // With nothing left to read, a hang-up would be reported again at once, forever.
        if readiness.hangup && !readiness.readable {
            logger.error("perf event of \(format.name) hung up; that CPU is no longer heard", metadata: ["cpu": "\(ring.cpu)"])
            ring.close()
            rings.removeAll { $0 === ring }
        }
    }

    static func onlineCPUs() throws(TracepointError) -> [Int] {
        let path = "/sys/devices/system/cpu/online"
        switch PathReader.bytes(path, limit: PathReader.attributeLimit) {
        case .failure(let error):
            throw .system(error)
        case .success(let bytes):
            guard let cpus = CPUList.parse(String(decoding: bytes, as: UTF8.self)) else { throw .noCPUs }
            return cpus
        }
    }
}

/// One CPU's perf event and its mapped ring: the control page, then `dataPages` pages.
final class PerfRing {
    let cpu: Int
    let descriptor: WatchedDescriptor
    let controlPage: UnsafeMutableRawPointer
    private let mappingSize: Int
    let data: UnsafeRawBufferPointer
    /// What this reader has consumed (`data_tail` as last published).
    var tail: UInt64 = 0
    private var mapped = true

    init(tracepoint id: UInt64, cpu: Int, dataPages: Int, loop: EventLoop) throws(TracepointError) {
        let fd = cvfio_perf_open_tracepoint(id, Int32(cpu))
        guard fd >= 0 else { throw .system(.last("perf_event_open(tracepoint \(id), cpu \(cpu))")) }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let size = pageSize * (1 + dataPages)
        // Writable, so that data_tail tells the kernel what was read (a read-only mapping
        // is an overwrite ring, which loses the oldest records silently).
        let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let base, base != MAP_FAILED else {
            let error = SystemCallError.last("mmap(perf ring, cpu \(cpu))")
            Glibc.close(fd)
            throw .system(error)
        }
        self.cpu = cpu
        self.descriptor = WatchedDescriptor(adopting: fd, loop: loop)
        self.controlPage = base
        self.mappingSize = size
        self.data = UnsafeRawBufferPointer(start: base + pageSize, count: pageSize * dataPages)
        tail = cvfio_perf_data_head(base)  // what came before the subscription is not news
        cvfio_perf_set_data_tail(base, tail)
    }

    func close() {
        descriptor.close()
        guard mapped else { return }
        mapped = false
        munmap(controlPage, mappingSize)
    }

    deinit { close() }
}

/// A tracepoint that cannot be heard; the text is fit for a log line.
package enum TracepointError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No tracefs directory has the tracepoint (tracefs not mounted, or the kernel lacks it).
    case notFound(event: String, searched: [String])
    case format(TracepointFormatError)
    case system(SystemCallError)
    case noCPUs

    package var description: String {
        switch self {
        case .notFound(let event, let searched):
            return "no tracepoint \(event) under \(searched.joined(separator: " or ")) (tracefs not mounted, or the kernel lacks it)"
        case .format(let error): return error.description
        case .system(let error): return error.description
        case .noCPUs: return "no online CPU found in /sys/devices/system/cpu/online"
        }
    }
}

/// Where tracefs is and what it says about a tracepoint.
package enum Tracefs {
    /// tracefs's own mount point, then the older path under debugfs (rasdaemon's).
    package static let directories = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]

    /// The tracepoint's format from the first directory that has it.
    package static func format(system: String, event: String, in directories: [String] = directories)
        throws(TracepointError) -> TracepointFormat {
        for directory in directories {
            guard case .success(let bytes) = PathReader.bytes("\(directory)/events/\(system)/\(event)/format", limit: PathReader.attributeLimit) else { continue }
            do {
                return try TracepointFormat.parse(String(decoding: bytes, as: UTF8.self))
            } catch {
                throw .format(error)
            }
        }
        throw .notFound(event: "\(system):\(event)", searched: directories)
    }
}
