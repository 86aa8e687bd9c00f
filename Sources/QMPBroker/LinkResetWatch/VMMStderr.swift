import Glibc
import LinkResetTrace
import Logging
import VFIOWatch

/// QEMU's own stderr (its fd 2), held by the broker while it is attached: beside libvirt
/// that is a pipe to virtlogd, which writes `/var/log/libvirt/qemu/NAME.log`.
///
/// Two things need it:
/// - While QEMU logs into the broker's trace file, lines the broker did not ask for (an
///   operator's own trace events, `-d` output) would end up there, not in libvirt's log.
///   The broker passes them on (`TraceLinePassThrough`) by writing them onto QEMU's fd 2.
/// - The detach gives QEMU its log back with `logfile /proc/self/fd/2`, which QEMU opens
///   again with its own rights. Measured with libvirt 9.0: virtlogd's pipe is root:root
///   0600, so QEMU (libvirt-qemu, no capabilities) gets `Error opening logfile
///   /proc/self/fd/2: Permission denied` and then logs nowhere at all. A pipe QEMU cannot
///   reopen is given write access for QEMU's group (owner and its rights unchanged), so
///   that QEMU can reopen the stderr it already holds, and nothing more.
///
/// Writes never block the VM's loop: a pipe is reopened through `/proc/self/fd` as a
/// description of its own with O_NONBLOCK (setting it on the duplicate would set it on
/// QEMU's fd 2 as well); other kinds of file are written only when `poll` says so. A
/// line that does not fit is dropped and counted.
final class VMMStderr {
    private let logger: Logger
    private var fd: Int32 = -1
    var descriptor: Int32 { fd }
    private var reportedDrops = false
    private(set) var droppedLines = 0
    var isOpen: Bool { fd >= 0 }

    init(logger: Logger) {
        self.logger = logger
    }

    deinit { close() }

    /// Takes hold of QEMU's fd 2; makes it reopenable by QEMU when it is a pipe QEMU cannot
    /// open. Failures are logged (lines then stay in the broker's file only).
    func open(vmmPID pid: pid_t?, vmmOwner: (uid: uid_t, gid: gid_t)?) {
        close()
        guard let pid else { return }
        let duplicate: Int32
        do throws(VFIOTakeoverError) {
            duplicate = try duplicateFileDescriptor(2, ofProcess: pid)
        } catch {
            logger.notice("cannot reach QEMU's stderr: trace lines the broker did not ask for stay in its trace log",
                          metadata: ["reason": "\(error)"])
            return
        }
        var status = stat()
        guard fstat(duplicate, &status) == 0 else {
            Glibc.close(duplicate)
            return
        }
        guard status.st_mode & S_IFMT == S_IFIFO else {
            fd = duplicate
            return
        }
        if let vmmOwner, !Self.canWrite(status, uid: vmmOwner.uid, gid: vmmOwner.gid) {
            if fchown(duplicate, uid_t.max, vmmOwner.gid) == 0 && fchmod(duplicate, (status.st_mode & 0o7777) | S_IWGRP) == 0 {
                logger.info("QEMU's stderr (a pipe) made writable by QEMU's group, so that it can reopen it as /proc/self/fd/2",
                            metadata: ["gid": "\(vmmOwner.gid)", "pipe-owner": "\(status.st_uid)"])
            } else {
                logger.warning("QEMU cannot reopen its stderr (/proc/self/fd/2) and the broker cannot change that",
                               metadata: ["reason": "\(String(cString: strerror(errno)))"])
            }
        }
        let reopened = Glibc.open("/proc/self/fd/\(duplicate)", O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        Glibc.close(duplicate)
        if reopened < 0 {
            logger.notice("cannot reopen QEMU's stderr pipe", metadata: ["reason": "\(String(cString: strerror(errno)))"])
            return
        }
        fd = reopened
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Writes one line (a `\n` is added) without blocking.
    func write(line: UnsafeBufferPointer<UInt8>) {
        guard fd >= 0 else { return }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, 0) == 1, poller.revents & Int16(POLLOUT) != 0 else { return dropped() }
        var bytes = [UInt8](line)
        bytes.append(0x0A)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if written != bytes.count { dropped() }
    }

    private func dropped() {
        droppedLines += 1
        guard !reportedDrops else { return }
        reportedDrops = true
        logger.warning("QEMU's stderr does not take lines fast enough: passed-on trace lines are being dropped")
    }

    private static func canWrite(_ status: stat, uid: uid_t, gid: gid_t) -> Bool {
        if uid == 0 { return true }
        if status.st_uid == uid { return status.st_mode & S_IWUSR != 0 }
        if status.st_gid == gid { return status.st_mode & S_IWGRP != 0 }
        return status.st_mode & S_IWOTH != 0
    }
}

extension VMMStderr {
    /// Whether QEMU's stderr is this very file (then nothing may be written onto it).
    func isFile(_ identity: TraceLogFile.Identity) -> Bool {
        var status = stat()
        guard isOpen, fstat(descriptor, &status) == 0 else { return false }
        return TraceLogFile.Identity(status) == identity
    }
}
