import Dispatch
import ErrorEvents
import Glibc
import Logging
import Synchronization
import Testing
import VFIOWatch

/// Collects values handed over on other queues; tests wait for them with a bound.
final class Mailbox<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])
    private let arrivals = DispatchSemaphore(value: 0)

    func post(_ value: Value) {
        values.withLock { $0.append(value) }
        arrivals.signal()
    }

    /// The next value, or nil when none arrives within `timeout`.
    func next(within timeout: DispatchTimeInterval = .seconds(5)) -> Value? {
        guard arrivals.wait(timeout: .now() + timeout) == .success else { return nil }
        return values.withLock { $0.removeFirst() }
    }

    /// Values posted and not yet taken with `next`.
    var pending: [Value] { values.withLock { $0 } }
}

/// A log handler that keeps every message, so tests can count what was logged.
struct CapturingLogHandler: LogHandler {
    final class Store: Sendable {
        let entries = Mutex<[(Logger.Level, String)]>([])
        func messages(at level: Logger.Level? = nil) -> [String] {
            entries.withLock { $0.filter { level == nil || $0.0 == level }.map(\.1) }
        }
    }

    let store: Store
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        store.entries.withLock { $0.append((event.level, "\(event.message)")) }
    }

    static func logger() -> (Logger, Store) {
        let store = Store()
        return (Logger(label: "test") { _ in CapturingLogHandler(store: store) }, store)
    }
}

/// A directory under /tmp that is removed, with everything in it, on `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/vfiowatch-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        try #require(made != nil, "mkdtemp failed: errno \(errno)")
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Creates the directories of `relativePath` (like `mkdir -p`).
    func makeDirectory(_ relativePath: String) throws {
        var current = path
        for component in relativePath.split(separator: "/") {
            current += "/\(component)"
            let result = mkdir(current, 0o755)
            try #require(result == 0 || errno == EEXIST, "mkdir \(current): errno \(errno)")
        }
    }

    /// Replaces the file's contents, as the kernel's attribute would read after a change.
    func write(_ relativePath: String, _ text: String) throws {
        let fd = open(path + "/" + relativePath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        try #require(fd >= 0, "open \(relativePath): errno \(errno)")
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        try #require(written == bytes.count)
    }

    /// A symbolic link at `relativePath` whose target text is `target` (may dangle).
    func symlink(_ relativePath: String, to target: String) throws {
        try #require(Glibc.symlink(target, path + "/" + relativePath) == 0, "symlink \(relativePath): errno \(errno)")
    }

    func removeFile(_ relativePath: String) throws {
        try #require(unlink(path + "/" + relativePath) == 0, "unlink \(relativePath): errno \(errno)")
    }

    func remove() {
        Self.removeTree(path)
    }

    private static func removeTree(_ path: String) {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                removeTree(path + "/" + name)
            }
            closedir(directory)
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

/// Writes counter files exactly as a Linux 6.1 kernel's `aer_stats_dev_attr` does.
enum KernelAERFile {
    /// `aer_correctable_error_string`: bits 0–15 are counted (AER_MAX_TYPEOF_COR_ERRS).
    static let correctableNames: [Int: String] = [
        0: "RxErr", 6: "BadTLP", 7: "BadDLLP", 8: "Rollover",
        12: "Timeout", 13: "NonFatalErr", 14: "CorrIntErr", 15: "HeaderOF",
    ]
    /// `aer_uncorrectable_error_string` in 6.1: bits 0–26 are counted (AER_MAX_TYPEOF_UNCOR_ERRS 27).
    static let uncorrectableNames: [Int: String] = [
        0: "Undefined", 4: "DLP", 5: "SDES", 12: "TLP", 13: "FCP", 14: "CmpltTO",
        15: "CmpltAbrt", 16: "UnxCmplt", 17: "RxOF", 18: "MalfTLP", 19: "ECRC",
        20: "UnsupReq", 21: "ACSViol", 22: "UncorrIntErr", 23: "BlockedTLP",
        24: "AtomicOpBlocked", 25: "TLPBlockedErr", 26: "PoisonTLPBlocked",
    ]

    /// `bits`: count per status bit; named bits print always, unnamed ones only when non-zero.
    static func text(_ severity: Severity, bits: [Int: UInt64] = [:], total: UInt64 = 0) -> String {
        let (names, limit, array, totalName): ([Int: String], Int, String, String) = switch severity {
        case .correctable: (correctableNames, 16, "dev_cor_errs", "ERR_COR")
        case .nonFatal: (uncorrectableNames, 27, "dev_nonfatal_errs", "ERR_NONFATAL")
        case .fatal: (uncorrectableNames, 27, "dev_fatal_errs", "ERR_FATAL")
        }
        var text = ""
        for bit in 0..<limit {
            let count = bits[bit] ?? 0
            if let name = names[bit] {
                text += "\(name) \(count)\n"
            } else if count != 0 {
                text += "\(array)_bit[\(bit)] \(count)\n"
            }
        }
        return text + "TOTAL_\(totalName) \(total)\n"
    }
}

/// A fake `<sysfs>/bus/pci/devices/<host>/` with the three AER counter files.
struct FakeSysfsDevice {
    let root: TemporaryDirectory
    let host: HostAddress
    var directory: String { "bus/pci/devices/\(host)" }

    init(host: String = "0000:3b:00.0") throws {
        root = try TemporaryDirectory()
        self.host = try #require(HostAddress(host))
        try root.makeDirectory(directory)
    }

    var reader: SysfsAERReader { SysfsAERReader(sysfsRoot: root.path) }

    func write(_ severity: Severity, bits: [Int: UInt64] = [:], total: UInt64 = 0) throws {
        try root.write("\(directory)/\(AERCounters.fileName(for: severity))", KernelAERFile.text(severity, bits: bits, total: total))
    }

    func writeRaw(_ severity: Severity, _ text: String) throws {
        try root.write("\(directory)/\(AERCounters.fileName(for: severity))", text)
    }

    func remove(_ severity: Severity) throws {
        try root.removeFile("\(directory)/\(AERCounters.fileName(for: severity))")
    }

    /// All three files with every counter at zero, as after boot.
    func writeAllZero() throws {
        for severity in Severity.allCases { try write(severity) }
    }
}

