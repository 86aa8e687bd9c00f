import Glibc
import KernelTracepoint
import Synchronization
import USDTProbes

/// QEMU's `handle_qmp_command` probe as a tracefs uprobe event whose fetch argument copies
/// the request's text at the hit: QEMU frees that text as the probe returns, so the uprobe
/// PMU's register samples cannot say which command it was, and the canary must know it was
/// the broker's own (its id). One event per probe site, named after the VMM and this
/// process so that brokers and restarts never share one; the perf events that read it are
/// per thread like the PMU's (`USDTProbeSession`). Removed again at `remove()`; a broker
/// killed outright leaves the definition behind (inert: nothing is armed without a perf
/// event open on it).
final class USDTCanaryEvent {
    enum Failure: Error, CustomStringConvertible {
        case noTracefs
        case define(String, errno: Int32)
        case format(String)

        var description: String {
            switch self {
            case .noTracefs: "no tracefs with uprobe_events (mount tracefs on /sys/kernel/tracing)"
            case .define(let line, let errno): "uprobe_events «\(line)»: \(String(cString: strerror(errno)))"
            case .format(let reason): "the canary event's format: \(reason)"
            }
        }
    }

    static let group = "qmp_broker"
    /// Names stay unique across re-arms within one broker (a definition that could not be
    /// removed yet must not block the next).
    private static let sequence = Atomic<Int>(0)

    /// The tracefs directory with `uprobe_events`, if one is mounted.
    static var tracefs: String? {
        ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"].first { access("\($0)/uprobe_events", W_OK) == 0 }
    }

    let tracefs: String
    let names: [String]
    /// Each site's event: its id (perf's `config`) and where the request text sits.
    let formats: [(id: UInt64, request: TracepointField)]

    /// Defines one event per site of `probe` in `binaryPath` (the VMM's `/proc/PID/exe`),
    /// reading the string argument `argument` at the hit.
    init(pid: pid_t, binaryPath: String, sites: [USDTProbeSite], argument: Int) throws(Failure) {
        guard let tracefs = Self.tracefs else { throw .noTracefs }
        self.tracefs = tracefs
        Self.removeLeftovers(tracefs: tracefs)
        var names: [String] = []
        var formats: [(id: UInt64, request: TracepointField)] = []
        do throws(Failure) {
            for site in sites {
                guard argument < site.arguments.count, let fetch = Self.stringFetch(site.arguments[argument]) else {
                    throw Failure.format("the probe's argument \(argument) cannot be fetched as a string")
                }
                let number = Self.sequence.add(1, ordering: .relaxed).newValue
                let name = "canary_\(pid)_\(getpid())_\(number)"
                let semaphore = site.semaphoreFileOffset.map { "(0x\(String($0, radix: 16)))" } ?? ""
                let line = "p:\(Self.group)/\(name) \(binaryPath):0x\(String(site.fileOffset, radix: 16))\(semaphore) request=\(fetch)"
                try Self.append(line, tracefs: tracefs)
                names.append(name)
                let text = try Self.read("\(tracefs)/events/\(Self.group)/\(name)/format")
                let format: TracepointFormat
                do {
                    format = try TracepointFormat.parse(text)
                } catch {
                    throw Failure.format("\(error)")
                }
                guard let field = format.field(named: "request") else { throw Failure.format("no request field") }
                formats.append((format.id, field))
            }
        } catch {
            Self.remove(names, tracefs: tracefs)
            throw error
        }
        self.names = names
        self.formats = formats
    }

    /// After every perf event on it is closed (the kernel refuses while one is open).
    func remove() { Self.remove(names, tracefs: tracefs) }

    /// The request text of a sample of one of these events, nil for another event's.
    func request(in sample: PerfRawSample) -> String? {
        // The record's common_type is the tracepoint's id (its low 16 bits).
        guard sample.raw.count >= 2 else { return nil }
        let type = UInt16(sample.raw[0]) | UInt16(sample.raw[1]) << 8
        guard let format = formats.first(where: { UInt16(truncatingIfNeeded: $0.id) == type }) else { return nil }
        return sample.raw.withUnsafeBytes { TracepointRecord($0).string(format.request) }
    }

    /// A pointer argument as a tracefs fetch of the string it points to: a register
    /// (`+0(%ax):string`) or memory at a register (`8@(%rax)`, a `GString *` whose first
    /// member is the text: `+0(+0(%ax)):string`).
    static func stringFetch(_ argument: USDTArgument) -> String? {
        switch argument.location {
        case .register(let register): "+0(%\(register)):string"
        case .memory(let base, let displacement):
            "+0(\(displacement < 0 ? "" : "+")\(displacement)(%\(base))):string"
        case .constant: nil
        }
    }

    /// Definitions of brokers that were killed before they could remove theirs (the
    /// broker's pid is in the name; one still running keeps its own).
    private static func removeLeftovers(tracefs: String) {
        guard let text = try? read("\(tracefs)/uprobe_events") else { return }
        let prefix = "p:\(group)/canary_"
        var stale: [String] = []
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            guard let name = line.split(separator: " ").first?.dropFirst("p:\(group)/".count) else { continue }
            let parts = name.split(separator: "_")  // canary, VMM pid, broker pid, number
            guard parts.count == 4, let broker = pid_t(parts[2]), broker != getpid(),
                  kill(broker, 0) != 0, errno == ESRCH else { continue }
            stale.append(String(name))
        }
        remove(stale, tracefs: tracefs)
    }

    static func remove(_ names: [String], tracefs: String) {
        for name in names { try? append("-:\(group)/\(name)", tracefs: tracefs) }
    }

    /// O_APPEND: opening uprobe_events for writing without it clears every definition.
    private static func append(_ line: String, tracefs: String) throws(Failure) {
        let fd = open("\(tracefs)/uprobe_events", O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw .define(line, errno: errno) }
        defer { close(fd) }
        let text = line + "\n"
        let written = text.withCString { write(fd, $0, strlen($0)) }
        guard written == text.utf8.count else { throw .define(line, errno: errno) }
    }

    private static func read(_ path: String) throws(Failure) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .format("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
