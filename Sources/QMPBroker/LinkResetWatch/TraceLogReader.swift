import BrokerState
import EventLoop
import Glibc
import LinkResetTrace
import Logging
import QMPWire

/// Follows the broker's trace log (inotify on the VM's loop) from where the last run
/// stopped reading it: the read position is kept in the state file per VM, tied to the
/// file's inode, so lines QEMU wrote while no broker ran are still read, and known to be
/// late. A file shorter than the read position started again (QEMU ≥ 8 truncates the file
/// when it reopens it; an operator may truncate it): reading goes on from its top.
final class TraceLogReader {
    private let path: String
    private let vm: String
    private let store: StateStore?
    private let loop: EventLoop
    private let logger: Logger
    private var file: TraceLogFile?
    private var notify: FileWatches.Watch?
    private var splitter = LineSplitter.traceLog
    /// Bytes read from `file` so far; what was written before `lateUntil` was logged while
    /// the broker was away.
    private var readOffset: Int64 = 0
    private var lateUntil: Int64 = 0
    /// Called on the loop when QEMU appended to the file.
    var onAppended: (() -> Void)?
    /// Called with every line `read` takes, before it is parsed (see `VMMStderr`).
    var onLine: ((UnsafeBufferPointer<UInt8>) -> Void)?

    init(path: String, vm: String, store: StateStore?, loop: EventLoop, logger: Logger) {
        self.path = path
        self.vm = vm
        self.store = store
        self.loop = loop
        self.logger = logger
    }

    /// The file being read, nil when none is open.
    var fileIdentity: TraceLogFile.Identity? { file?.identity }
    /// Whether the open file was created by the broker's last open.
    var fileIsNew: Bool { file?.isNew ?? false }

    /// Whether the path still names the file being read (see `TraceLogFile`).
    var isStillAtPath: Bool { file?.isStillAtPath == true }

    /// Opens the file safely (`TraceLogFile`) and resumes where the last run stopped when
    /// it is the same file; lines up to its current end then count as seen late.
    func open(access: TraceLogAccess) throws(TraceLogFile.Failure) {
        close()
        let file = try TraceLogFile.open(path, access: access)
        file.warnings.forEach { logger.warning("trace log: \($0)") }
        do throws(SystemCallError) {
            // The loop's one inotify instance, shared by its VMs (see `FileWatches`).
            notify = try loop.fileWatches.watchModifications(of: path) { [weak self] in self?.onAppended?() }
        } catch {
            Glibc.close(file.fd)
            close()
            throw TraceLogFile.Failure(description: "inotify on \(path) failed (errno \(error.errno))")
        }
        self.file = file
        let resumeAt = resumeOffset(for: file)
        readOffset = Int64(lseek(file.fd, Int(resumeAt ?? file.sizeAtOpen), SEEK_SET))
        lateUntil = file.sizeAtOpen
        if let resumeAt, resumeAt < file.sizeAtOpen {
            logger.notice("resuming the trace log where the last run stopped",
                          metadata: ["offset": "\(resumeAt)", "unread": "\(file.sizeAtOpen - resumeAt)"])
        }
        splitter.reset()
    }

    func close() {
        if let notify { loop.fileWatches.cancel(notify) }
        notify = nil
        if let file { Glibc.close(file.fd) }
        file = nil
    }

    /// Reads what QEMU appended, the backlog first in reads that end at `lateUntil`, so
    /// every line in it is known to be late; then stores how far it got.
    func read(_ handle: (QEMUTraceLine.Event, _ late: Bool) -> Void) {
        guard let opened = file else { return }
        let fd = opened.fd
        let before = readOffset
        // The loop thread's receive buffer: nothing is allocated per wakeup.
        ThreadReceiveBuffer.withBuffers { buffers in
            let chunk = buffers.data
            while file?.fd == fd {
                let late = readOffset < lateUntil
                let wanted = late ? min(chunk.count, Int(lateUntil - readOffset)) : chunk.count
                let count = Glibc.read(fd, chunk.baseAddress, wanted)
                if count == 0, let size = currentSize, size < readOffset {
                    startAgain(reason: "the trace log is shorter than what was read (\(size) < \(readOffset) bytes)")
                    continue
                }
                guard count > 0 else { break }
                readOffset += Int64(count)
                splitter.feed(UnsafeRawBufferPointer(rebasing: chunk[..<count])) { line in
                    let line = line.withoutLineEnd
                    onLine?(line)
                    if let parsed = QEMUTraceLine.parse(line) { handle(parsed.event, late) }
                }
            }
        }
        // Also when a line's action closed the file meanwhile (a link reset's stop found
        // the VMM gone): what was acted on must not come back as late.
        if readOffset != before { savePosition(of: file ?? opened) }
    }

    /// The file's size now, nil when no file is open.
    var currentSize: Int64? {
        guard let fd = file?.fd else { return nil }
        var status = stat()
        return fstat(fd, &status) == 0 ? Int64(status.st_size) : nil
    }

    /// QEMU answered `logfile` for this path: it reopened the file, and QEMU ≥ 8 truncated
    /// it (`fopen(filename, "w")`). Seen as a file now shorter than before the command, it
    /// is read again from the top: what QEMU wrote since is new, not late.
    func reopenedByQEMU(sizeBefore: Int64) {
        guard let size = currentSize, size < sizeBefore else { return }
        startAgain(reason: "QEMU truncated the trace log when it reopened it (\(sizeBefore) → \(size) bytes)")
    }

    private func startAgain(reason: String) {
        guard let fd = file?.fd else { return }
        logger.notice("reading the trace log from its start", metadata: ["reason": "\(reason)"])
        readOffset = Int64(lseek(fd, 0, SEEK_SET))
        lateUntil = 0
        splitter.reset()
        savePosition()
    }

    /// Whether QEMU traced the in-band command `id` (`monitor_qmp_cmd_in_band`) into the
    /// file since it was `offset` long; read with `pread`, so the following position is left
    /// alone, and bounded (the canary's reply comes milliseconds after its line).
    func hasCanary(id: String, since offset: Int64) -> Bool {
        guard let fd = file?.fd, let size = currentSize else { return false }
        var position = size < offset ? 0 : offset  // started again meanwhile: all of it is new
        let end = min(size, position + Self.canaryScanLimit)
        var splitter = LineSplitter.traceLog
        var found = false
        // On the stack: a check runs inside the reply's read, which holds the loop's buffer.
        withUnsafeTemporaryAllocation(byteCount: Self.canaryChunk, alignment: 1) { chunk in
            while position < end, !found {
                let count = pread(fd, chunk.baseAddress, min(chunk.count, Int(end - position)), off_t(position))
                guard count > 0 else { break }
                position += Int64(count)
                splitter.feed(UnsafeRawBufferPointer(rebasing: chunk[..<count])) { line in
                    if !found, case .qmpCommandInBand(id)? = QEMUTraceLine.parse(line)?.event { found = true }
                }
            }
        }
        return found
    }

    /// What a canary scan reads at a time; the canary's line is usually all there is.
    private static let canaryChunk = 8 << 10

    static let canaryScanLimit: Int64 = 4 << 20

    /// After the lines were acted on: a broker killed now resumes after them.
    func savePosition(of file: TraceLogFile? = nil) {
        guard let store, let file = file ?? self.file else { return }
        let consumed = readOffset - Int64(splitter.pendingBytes)
        do {
            try store.saveTraceLogPosition(TraceLogPosition(vm: vm, fileDevice: file.identity.device,
                                                            fileInode: file.identity.inode, offset: consumed))
        } catch {
            logger.error("cannot store the trace log position", metadata: ["reason": "\(error)"])
        }
    }

    /// The stored position when it belongs to this very file; 0 when the file is now shorter
    /// (it was truncated while the broker was away, and what is in it came after).
    private func resumeOffset(for file: TraceLogFile) -> Int64? {
        guard let store else { return nil }
        do {
            guard let position = try store.traceLogPosition(vm: vm),
                  position.fileDevice == file.identity.device, position.fileInode == file.identity.inode
            else { return nil }
            return position.offset <= file.sizeAtOpen ? position.offset : 0
        } catch {
            logger.error("cannot read the trace log position", metadata: ["reason": "\(error)"])
            return nil
        }
    }
}
