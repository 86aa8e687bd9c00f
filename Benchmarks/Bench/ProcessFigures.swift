import Glibc
import QMPBroker
import VFIOWatch

/// What /proc and getrusage say about a process: its CPU time and resident memory.
enum ProcessFigures {
    /// utime + stime of `pid` in seconds (clock-tick resolution, 10 ms at USER_HZ 100).
    static func cpuSeconds(pid: pid_t) -> Double? {
        guard let text = PathReader.read("/proc/\(pid)/stat"), let end = text.lastIndex(of: ")") else { return nil }
        // Fields after "(comm)": state is field 3, utime and stime are fields 14 and 15.
        let fields = text[text.index(after: end)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// VmRSS of `pid` in KiB.
    static func residentKiB(pid: pid_t) -> Int? {
        guard let text = PathReader.read("/proc/\(pid)/status") else { return nil }
        let line = text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        return line.flatMap { Int($0.split(separator: " ")[1]) }
    }

    /// CPU seconds the calling thread has used.
    static func threadCPUSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    static func cpuModel() -> String {
        let line = PathReader.read("/proc/cpuinfo")?.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line.map { String($0.drop { $0 != ":" }.dropFirst().drop { $0 == " " }) } ?? "unknown"
    }

    static var onlineCores: Int { sysconf(Int32(_SC_NPROCESSORS_ONLN)) }
}
