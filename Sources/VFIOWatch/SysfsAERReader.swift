import ErrorEvents
import EventLoop
import Glibc

/// Reads a host device's AER counters from `<sysfsRoot>/bus/pci/devices/<host>/`.
///
/// Stateless: `AERCounterTracker` keeps the baseline and decides what to log.
package struct SysfsAERReader: Sendable {
    /// `/sys` on a real host; tests point it at a fake tree.
    package let sysfsRoot: String

    package init(sysfsRoot: String = "/sys") {
        // Keep "/" as is, drop a trailing slash elsewhere so paths have no "//".
        var root = sysfsRoot
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        self.sysfsRoot = root
    }

    package func directory(of host: HostAddress) -> String {
        (sysfsRoot == "/" ? "" : sysfsRoot) + "/bus/pci/devices/\(host)"
    }

    package func path(of severity: Severity, for host: HostAddress) -> String {
        directory(of: host) + "/" + AERCounters.fileName(for: severity)
    }

    /// Reads one counter file.
    package func read(_ severity: Severity, of host: HostAddress) -> AERCounterFile {
        read(severity, at: path(of: severity, for: host))
    }

    private func read(_ severity: Severity, at path: String) -> AERCounterFile {
        switch PathReader.bytes(path, limit: PathReader.attributeLimit) {
        case .success(let bytes):
            return .present(AERCounters(parsing: String(decoding: bytes, as: UTF8.self), severity: severity))
        case .failure(let error) where error.errno == ENOENT || error.errno == ENOTDIR:
            return .absent
        case .failure(let error):
            return .unreadable(error)
        }
    }

    /// Reads all three counter files.
    package func read(_ host: HostAddress) -> SysfsAERReading { read(CounterPaths(host, reader: self)) }

    /// The three counter files of one function, named once (a poll on the error path
    /// builds no path).
    package struct CounterPaths: Sendable {
        let correctable: String
        let nonFatal: String
        let fatal: String

        package init(_ host: HostAddress, reader: SysfsAERReader) {
            correctable = reader.path(of: .correctable, for: host)
            nonFatal = reader.path(of: .nonFatal, for: host)
            fatal = reader.path(of: .fatal, for: host)
        }
    }

    package func read(_ paths: CounterPaths) -> SysfsAERReading {
        SysfsAERReading(correctable: read(.correctable, at: paths.correctable),
                        nonFatal: read(.nonFatal, at: paths.nonFatal),
                        fatal: read(.fatal, at: paths.fatal))
    }
}

/// One counter file as a read found it.
package enum AERCounterFile: Sendable, Hashable {
    case present(AERCounters)
    /// No such file: no AER capability, or the device is gone. Not an error.
    case absent
    /// There but not readable (e.g. EIO or ENODEV while the device is being removed).
    case unreadable(SystemCallError)

    package var counters: AERCounters? {
        if case .present(let counters) = self { return counters }
        return nil
    }
}

/// The three counter files of a device as one read found them.
package struct SysfsAERReading: Sendable, Hashable {
    package var correctable: AERCounterFile
    package var nonFatal: AERCounterFile
    package var fatal: AERCounterFile

    package init(correctable: AERCounterFile, nonFatal: AERCounterFile, fatal: AERCounterFile) {
        self.correctable = correctable
        self.nonFatal = nonFatal
        self.fatal = fatal
    }

    package subscript(severity: Severity) -> AERCounterFile {
        switch severity {
        case .correctable: correctable
        case .nonFatal: nonFatal
        case .fatal: fatal
        }
    }

    /// The counters that could be read; absent and unreadable files are nil.
    package var snapshot: AERCounterSnapshot {
        AERCounterSnapshot(correctable: correctable.counters, nonFatal: nonFatal.counters, fatal: fatal.counters)
    }
}
