import KernelTracepoint

/// Tracepoint format files and raw records as the kernel writes them.
enum Fixtures {
    /// `ras:aer_event` as Debian's Linux 6.1 lays it out (read in the nested host of
    /// `make host-e2e`; the ID differs per build, the print fmt is cut here).
    static let aerEventFormat = """
        name: aer_event
        ID: 1224
        format:
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
        \tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
        \tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

        \tfield:__data_loc char[] dev_name;\toffset:8;\tsize:4;\tsigned:1;
        \tfield:u32 status;\toffset:12;\tsize:4;\tsigned:0;
        \tfield:u8 severity;\toffset:16;\tsize:1;\tsigned:0;
        \tfield:u8 tlp_header_valid;\toffset:17;\tsize:1;\tsigned:0;
        \tfield:u32 tlp_header[4];\toffset:20;\tsize:16;\tsigned:0;

        print fmt: "%s PCIe Bus Error: severity=%s, %s, TLP Header=%s\\n", __get_str(dev_name), REC->severity == 2 ? "Corrected" : "Fatal"

        """

    /// `sched:sched_process_exec` as this machine's 6.18 kernel lays it out.
    static let processExecFormat = """
        name: sched_process_exec
        ID: 365
        format:
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
        \tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
        \tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

        \tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;
        \tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;
        \tfield:pid_t old_pid;\toffset:16;\tsize:4;\tsigned:1;

        print fmt: "filename=%s pid=%d old_pid=%d", __get_str(filename), REC->pid, REC->old_pid

        """

    /// A raw `aer_event` record laid out as `aerEventFormat` says: the 36 fixed bytes,
    /// then the device name with its NUL, which `dev_name`'s location points at.
    static func aerRecord(type: UInt16 = 1224, device: String = "0000:01:00.0", status: UInt32 = 0x4000,
                          severity: UInt8 = 0, tlpValid: UInt8 = 1, relative: Bool = false) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 36)
        put(type, at: 0, in: &bytes)
        put(Int32(4321), at: 4, in: &bytes)
        let name = Array(device.utf8) + [0]
        let start = relative ? 36 - (8 + 4) : 36
        put(UInt32(name.count) << 16 | UInt32(start), at: 8, in: &bytes)
        put(status, at: 12, in: &bytes)
        bytes[16] = severity
        bytes[17] = tlpValid
        return bytes + name
    }

    static func put<Value: FixedWidthInteger>(_ value: Value, at offset: Int, in bytes: inout [UInt8]) {
        withUnsafeBytes(of: value) { bytes.replaceSubrange(offset..<(offset + $0.count), with: $0) }
    }

    /// One perf record: header, then `body`, padded to 8 bytes as the kernel pads.
    static func perfRecord(type: UInt32, body: [UInt8]) -> [UInt8] {
        let size = (8 + body.count + 7) / 8 * 8
        var bytes = [UInt8](repeating: 0, count: 8)
        put(type, at: 0, in: &bytes)
        put(UInt16(size), at: 6, in: &bytes)
        bytes += body
        bytes += [UInt8](repeating: 0, count: size - bytes.count)
        return bytes
    }

    /// A `PERF_RECORD_SAMPLE` with `PERF_SAMPLE_TIME | PERF_SAMPLE_RAW`: u64 time, u32
    /// size, then the raw record.
    static func sample(_ raw: [UInt8], time: UInt64 = 1_796_602_490_015_444) -> [UInt8] {
        var head = [UInt8](repeating: 0, count: 12)
        put(time, at: 0, in: &head)
        put(UInt32(raw.count), at: 8, in: &head)
        return perfRecord(type: PerfRingWalker.recordSample, body: head + raw)
    }

    /// A `PERF_RECORD_LOST`: u64 id, u64 lost.
    static func lost(_ count: UInt64) -> [UInt8] {
        var body = [UInt8](repeating: 0, count: 16)
        put(UInt64(7), at: 0, in: &body)
        put(count, at: 8, in: &body)
        return perfRecord(type: PerfRingWalker.recordLost, body: body)
    }
}
