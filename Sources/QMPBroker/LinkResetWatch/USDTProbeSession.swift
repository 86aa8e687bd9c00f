import CPerfEvent
import EventLoop
import Glibc
import LinkResetTrace
import Synchronization
import USDTProbes
import VFIOWatch

/// QEMU's USDT probes armed on one running VMM with the kernel's uprobe PMU: a
/// `perf_event_open` per thread of the process and per probe site, each sampling the user
/// registers the probe's arguments live in; the semaphore goes in as `ref_ctr_offset`, so
/// the kernel raises it and QEMU computes the arguments. A thread's events share one
/// ring buffer (`PERF_EVENT_IOC_SET_OUTPUT`), whose descriptor sits on the VM's loop.
/// A ring cannot be mapped for an `inherit` event, so threads started later are armed by
/// `coverNewThreads()` (at every check; QEMU's vCPU threads exist before its monitor
/// answers, and the monitor and resets run in the main thread). Strings and memory
/// operands are read with `process_vm_readv`. No BPF.
///
/// Loop-confined. Closing the descriptors (here, or by the broker dying) disarms the
/// probes and lowers the semaphores again.
final class USDTProbeSession {
    enum Failure: Error, CustomStringConvertible {
        case unusable(QEMUProbeSites.Unusable)
        case system(String, errno: Int32)

        var description: String {
            switch self {
            case .unusable(let reason): "\(reason)"
            case .system(let operation, let errno): "\(operation): \(String(cString: strerror(errno)))"
            }
        }
    }

    /// The binary's probes, read from `/proc/PID/exe`: nil and why when it has none usable.
    static func sites(pid: pid_t) -> (path: String, sites: QEMUProbeSites)? {
        (try? readSites(pid: pid))
    }

    static func readSites(pid: pid_t) throws(Failure) -> (path: String, sites: QEMUProbeSites) {
        let link = "/proc/\(pid)/exe"
        // The kernel resolves config1's path at open: give it the binary through the VMM's
        // own /proc link, valid even when the file was replaced or lives in another mount
        // namespace (libvirt's private /dev does not matter here, /proc is shared).
        var status = stat()
        guard stat(link, &status) == 0 else { throw .system("stat(\(link))", errno: errno) }
        let binary = BinaryIdentity(status)
        // Every VM of a host runs the same few QEMU binaries: each is read and parsed once.
        if let known = knownSites.withLock({ $0[binary] }) { return (link, try known.get()) }
        let result = Result { () throws(Failure) in try parseSites(link) }
        knownSites.withLock { $0[binary] = result }
        return (link, try result.get())
    }

    private static func parseSites(_ path: String) throws(Failure) -> QEMUProbeSites {
        let bytes = try readWholeFile(path)
        let image: ELFImage
        do {
            image = try ELFImage(bytes: bytes)
        } catch {
            throw .unusable(.bad("\(error)"))
        }
        do {
            return try QEMUProbeSites(image: image)
        } catch {
            throw .unusable(error)
        }
    }

    /// A binary as the file system knows it: a rebuilt or upgraded QEMU is another one.
    private struct BinaryIdentity: Hashable {
        let device: UInt64
        let inode: UInt64
        let size: Int64
        let modified: Int

        init(_ status: stat) {
            device = UInt64(status.st_dev)
            inode = UInt64(status.st_ino)
            size = Int64(status.st_size)
            modified = status.st_mtim.tv_sec * 1_000_000_000 + status.st_mtim.tv_nsec
        }
    }

    private static let knownSites = Mutex<[BinaryIdentity: Result<QEMUProbeSites, Failure>]>([:])

    /// A whole file (sysfs files report a size of 4096 and end early: read to EOF).
    private static func readWholeFile(_ path: String) throws(Failure) -> [UInt8] {
        switch PathReader.bytes(path) {
        case .success(let bytes): return bytes
        case .failure(let error): throw .system(error.call, errno: error.errno)
        }
    }

    private static func trimmed(_ bytes: [UInt8]) -> Substring {
        String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == "\n" || $0 == " " }).first ?? ""
    }

    /// One thread's ring: the first of its events, which the others write into.
    private final class Ring {
        let descriptor: WatchedDescriptor
        let page: UnsafeMutableRawPointer
        let mappedLength: Int
        var otherEvents: [Int32] = []

        init(descriptor: WatchedDescriptor, page: UnsafeMutableRawPointer, mappedLength: Int) {
            self.descriptor = descriptor
            self.page = page
            self.mappedLength = mappedLength
        }

        func close() {
            for fd in otherEvents { Glibc.close(fd) }
            otherEvents = []
            munmap(page, mappedLength)
            descriptor.close()
        }

        /// Lets go of the ring on the loop and hands back the events, still open (the ring's
        /// own through a duplicate), for the caller to close elsewhere.
        func detach() -> [Int32] {
            var events = otherEvents
            otherEvents = []
            let ring = dup(descriptor.fd)
            if ring >= 0 { events.append(ring) }
            munmap(page, mappedLength)
            descriptor.close()
            return events
        }
    }

    private struct ArmedSite {
        let probe: QEMUProbe
        let site: USDTProbeSite
    }

    let pid: pid_t
    let binaryPath: String
    let sites: QEMUProbeSites
    private let loop: EventLoop
    private var rings: [pid_t: Ring] = [:]
    private var armedByEventID: [UInt64: ArmedSite] = [:]
    /// The canary's request text, copied by the kernel at the hit; nil (and why, in
    /// `canaryUnchecked`) without tracefs, when any request counts for the canary.
    private var canaryEvent: USDTCanaryEvent?
    private(set) var canaryUnchecked: String?
    /// The perf ids of the canary event's per-thread perf events (their samples are raw).
    private var canaryEventIDs: Set<UInt64> = []
    private let registerMask: UInt64
    private let referenceCounterShift: UInt64
    private let pmuType: UInt32
    /// Data pages per ring (a power of two): room for bursts of config writes at boot.
    private static let dataPages = 16
    /// Each hit, in the order the kernel recorded them (by time across threads).
    var onHit: (QEMUProbeHit) -> Void = { _ in }
    /// A QMP request QEMU read, its text as it was at the hit (only with `canaryEvent`).
    var onRequest: (String) -> Void = { _ in }
    /// Samples the kernel dropped because a ring was full: a reset may have been missed.
    var onLost: (UInt64) -> Void = { _ in }
    private(set) var hitCount = 0

    /// Arms every site on every thread of `pid`. Throws when the PMU is missing or the
    /// kernel refuses (no CAP_PERFMON / ptrace rights over the VMM).
    init(pid: pid_t, binaryPath: String, sites: QEMUProbeSites, loop: EventLoop) throws(Failure) {
        self.pid = pid
        self.binaryPath = binaryPath
        self.sites = sites
        self.loop = loop
        pmuType = try Self.uprobePMUType()
        referenceCounterShift = try Self.referenceCounterShift()
        var mask: UInt64 = 0
        for site in sites.sites.values.joined() {
            for argument in site.arguments { if let register = argument.register { mask |= register.perfMask } }
        }
        registerMask = mask
        if let requestSites = sites.sites[.qmpRequest] {
            do {
                canaryEvent = try USDTCanaryEvent(pid: pid, binaryPath: binaryPath, sites: requestSites,
                                                  argument: QEMUProbe.qmpRequestTextArgument)
            } catch {
                canaryUnchecked = "\(error)"
            }
        }
        do {
            try armAllThreads()
        } catch {
            close()
            throw error
        }
    }

    // The rings' handlers hold this session unowned: never leave them registered. The
    // last reference drops on the VM's loop (the monitor lives there).
    deinit { close() }

    /// Disarms without holding up the loop: the kernel waits for an RCU grace period as it
    /// unregisters each uprobe (about 2 s for 4 threads' 28 events, measured on Linux 6.18),
    /// so the events' last descriptors are closed, and the canary event removed, on a
    /// thread of their own. The probes stay armed until then. Idempotent.
    func closeInBackground() {
        var events: [Int32] = []
        for ring in rings.values { events += ring.detach() }
        rings = [:]
        armedByEventID = [:]
        canaryEventIDs = []
        let canary = canaryEvent
        canaryEvent = nil
        Self.detached { [events, canaryNames = canary?.names ?? [], tracefs = canary?.tracefs ?? ""] in
            for fd in events { Glibc.close(fd) }
            USDTCanaryEvent.remove(canaryNames, tracefs: tracefs)
        }
    }

    /// Runs `body` on a detached thread of its own.
    private static func detached(_ body: @escaping @Sendable () -> Void) {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
            return nil
        }, box)
        if created == 0 {
            pthread_detach(thread)
        } else {
            Unmanaged<Box>.fromOpaque(box).takeRetainedValue().body()
        }
    }

    /// Disarms everything. Idempotent.
    func close() {
        for ring in rings.values { ring.close() }
        rings = [:]
        armedByEventID = [:]
        canaryEventIDs = []
        canaryEvent?.remove()
        canaryEvent = nil
    }

    var isArmed: Bool { !rings.isEmpty }
    var threadCount: Int { rings.count }

    // MARK: arming

    private static func uprobePMUType() throws(Failure) -> UInt32 {
        guard let text = try? readWholeFile("/sys/bus/event_source/devices/uprobe/type"),
              let type = UInt32(trimmed(text))
        else { throw .system("the kernel's uprobe PMU (/sys/bus/event_source/devices/uprobe)", errno: ENOENT) }
        return type
    }

    /// The bit where `ref_ctr_offset` goes in `config` (`config:32-63` on Linux ≥ 4.20).
    private static func referenceCounterShift() throws(Failure) -> UInt64 {
        let path = "/sys/bus/event_source/devices/uprobe/format/ref_ctr_offset"
        guard let text = try? readWholeFile(path),
              let range = trimmed(text).split(separator: ":").last,
              let low = range.split(separator: "-").first.flatMap({ UInt64($0) })
        else { throw .system("the uprobe PMU's ref_ctr_offset format (\(path))", errno: ENOENT) }
        return low
    }

    private func threads() -> [pid_t] {
        (DirectoryListing.names("/proc/\(pid)/task") ?? []).compactMap { pid_t($0) }
    }

    /// Arms threads started since, and lets go of the rings of threads that ended.
    func coverNewThreads() throws(Failure) {
        let alive = Set(threads())
        for (tid, ring) in rings where !alive.contains(tid) {
            drain()
            ring.close()
            rings[tid] = nil
        }
        try armAllThreads()
    }

    /// Threads that start while arming are caught by listing again.
    private func armAllThreads() throws(Failure) {
        for _ in 0..<4 {
            let missing = threads().filter { rings[$0] == nil }
            if missing.isEmpty { break }
            for tid in missing { try arm(thread: tid) }
        }
        guard !rings.isEmpty else { throw .system("listing /proc/\(pid)/task", errno: ESRCH) }
    }

    private func arm(thread tid: pid_t) throws(Failure) {
        var ring: Ring?
        for (probe, probeSites) in sites.sites {
            for site in probeSites {
                let config = (site.semaphoreFileOffset ?? 0) << referenceCounterShift
                let fd = binaryPath.withCString {
                    cperf_uprobe_open(pmuType, $0, site.fileOffset, config, tid, PerfSampleRecord.sampleType, registerMask)
                }
                guard fd >= 0 else {
                    let error = errno
                    ring?.close()
                    // The thread ended meanwhile: nothing to watch on it.
                    if error == ESRCH { return }
                    throw .system("perf_event_open(uprobe \(probe.rawValue) at \(binaryPath)+0x\(String(site.fileOffset, radix: 16)), thread \(tid))",
                                  errno: error)
                }
                var id: UInt64 = 0
                guard cperf_event_id(fd, &id) == 0 else {
                    let error = errno
                    Glibc.close(fd)
                    ring?.close()
                    throw .system("PERF_EVENT_IOC_ID", errno: error)
                }
                if let ring {
                    ring.otherEvents.append(fd)
                    guard cperf_set_output(fd, ring.descriptor.fd) == 0 else {
                        let error = errno
                        ring.close()
                        throw .system("PERF_EVENT_IOC_SET_OUTPUT", errno: error)
                    }
                } else {
                    ring = try makeRing(owner: fd)
                }
                armedByEventID[id] = ArmedSite(probe: probe, site: site)
            }
        }
        if let ring, let canaryEvent {
            for format in canaryEvent.formats {
                let fd = cperf_tracepoint_open(format.id, tid, PerfRawSample.sampleType)
                guard fd >= 0 else {
                    let error = errno
                    ring.close()
                    if error == ESRCH { return }
                    throw .system("perf_event_open(tracepoint \(USDTCanaryEvent.group) \(format.id), thread \(tid))", errno: error)
                }
                ring.otherEvents.append(fd)
                var id: UInt64 = 0
                guard cperf_event_id(fd, &id) == 0, cperf_set_output(fd, ring.descriptor.fd) == 0 else {
                    let error = errno
                    ring.close()
                    throw .system("the canary event's PERF_EVENT_IOC_ID / SET_OUTPUT", errno: error)
                }
                canaryEventIDs.insert(id)
            }
        }
        rings[tid] = ring
    }

    private func makeRing(owner fd: Int32) throws(Failure) -> Ring {
        let length = (1 + Self.dataPages) * Int(sysconf(Int32(_SC_PAGESIZE)))
        guard let page = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), page != MAP_FAILED else {
            let error = errno
            Glibc.close(fd)
            throw .system("mmap(perf ring)", errno: error)
        }
        let descriptor = WatchedDescriptor(adopting: fd, loop: loop)
        let ring = Ring(descriptor: descriptor, page: page, mappedLength: length)
        descriptor.onReady = { [unowned self] _ in drain() }
        do {
            try descriptor.setInterest(.read)
        } catch {
            ring.close()
            throw .system("epoll_ctl(perf ring)", errno: error.errno)
        }
        return ring
    }

    // MARK: reading

    /// Reads every ring to its head and hands the hits on in time order. Also called before
    /// a canary is judged: a hit is in its ring before QEMU even runs the command.
    func drain() {
        var samples: [PerfSampleRecord.Sample] = []
        var requests: [PerfRawSample] = []
        for ring in rings.values {
            for record in read(ring) {
                switch record {
                case .registers(.sample(let sample)): samples.append(sample)
                case .registers(.lost(let count)): onLost(count)
                case .registers(.other): break
                case .raw(let sample): requests.append(sample)
                }
            }
        }
        // The canary only asks whether its request came: its order among hits does not matter.
        for sample in requests.sorted(by: { $0.time < $1.time }) {
            if let text = canaryEvent?.request(in: sample) { onRequest(text) }
        }
        samples.sort { $0.time < $1.time }
        for sample in samples {
            guard let armed = armedByEventID[sample.eventID] else { continue }
            let values = armed.site.arguments.map {
                $0.resolve(registers: sample.registers, readMemory: readWord) ?? 0
            }
            hitCount += 1
            if let hit = armed.probe.hit(values: values, string: readString) { onHit(hit) }
        }
    }

    private enum Record {
        case registers(PerfSampleRecord)
        case raw(PerfRawSample)
    }

    private func read(_ ring: Ring) -> [Record] {
        let page = ring.page.assumingMemoryBound(to: perf_event_mmap_page.self)
        let dataOffset = Int(cperf_ring_data_offset(page)), dataSize = Int(cperf_ring_data_size(page))
        guard dataSize > 0 else { return [] }
        let data = ring.page + dataOffset
        let head = cperf_ring_head(page)
        var tail = page.pointee.data_tail
        var records: [Record] = []
        while tail < head {
            let headerBytes = copy(from: data, size: dataSize, at: tail, count: 8)
            guard let size = PerfSampleRecord.size(ofRecordAt: headerBytes[...]), size >= 8, tail + UInt64(size) <= head else { break }
            let bytes = copy(from: data, size: dataSize, at: tail, count: size)
            if let id = PerfRawSample.eventID(ofRecord: bytes[...]), canaryEventIDs.contains(id) {
                if let sample = PerfRawSample.decode(bytes[...]) { records.append(.raw(sample)) }
            } else if let record = PerfSampleRecord.decode(bytes[...], registerMask: registerMask) {
                records.append(.registers(record))
            }
            tail += UInt64(size)
        }
        cperf_ring_set_tail(page, tail)
        return records
    }

    /// `count` bytes of the ring at the running position `position`, across the wrap.
    private func copy(from data: UnsafeMutableRawPointer, size: Int, at position: UInt64, count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let start = Int(position % UInt64(size))
        let first = min(count, size - start)
        bytes.withUnsafeMutableBytes { buffer in
            buffer.baseAddress!.copyMemory(from: data + start, byteCount: first)
            if first < count { (buffer.baseAddress! + first).copyMemory(from: data, byteCount: count - first) }
        }
        return bytes
    }

    // MARK: the VMM's memory

    private func readWord(_ address: UInt64, _ size: Int) -> UInt64? {
        var word: UInt64 = 0
        let count = withUnsafeMutableBytes(of: &word) { cperf_read_process_memory(pid, address, $0.baseAddress, size) }
        return count == size ? word : nil
    }

    /// The NUL-terminated string at `address`, read a page piece at a time (a string may
    /// end just before an unmapped page), at most 256 bytes.
    private func readString(_ address: Int64) -> String? {
        guard address != 0 else { return nil }
        var bytes: [UInt8] = []
        var at = UInt64(bitPattern: address)
        while bytes.count < 256 {
            let toPageEnd = 4096 - Int(at % 4096)
            var chunk = [UInt8](repeating: 0, count: min(toPageEnd, 64))
            let count = chunk.withUnsafeMutableBytes { cperf_read_process_memory(pid, at, $0.baseAddress, $0.count) }
            guard count > 0 else { return nil }
            if let end = chunk[..<count].firstIndex(of: 0) {
                bytes += chunk[..<end]
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes += chunk[..<count]
            at += UInt64(count)
        }
        return nil
    }
}
