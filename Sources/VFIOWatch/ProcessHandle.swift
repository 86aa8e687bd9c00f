import CVFIO
import EventLoop
import Glibc

/// A pidfd on another process, to duplicate its open files with pidfd_getfd(2).
///
/// A pidfd names one process for good: if the pid is reused after the process exits,
/// calls fail with ESRCH instead of reaching the new process.
struct ProcessHandle: ~Copyable {
    let pid: pid_t
    private let pidfd: Int32

    init(pid: pid_t) throws(VFIOTakeoverError) {
        let fd = cvfio_pidfd_open(pid)
        guard fd >= 0 else {
            let error = SystemCallError.last("pidfd_open(\(pid))")
            switch error.errno {
            case ESRCH: throw .processGone(pid: pid)
            case ENOSYS: throw .kernelTooOld(error)
            default: throw .systemCall(error)
            }
        }
        self.pid = pid
        pidfd = fd
    }

    deinit { close(pidfd) }

    /// A new fd in this process (close-on-exec) for the same open file as the target's
    /// `fd`. The caller owns it. Needs PTRACE_MODE_ATTACH_REALCREDS over the target.
    /// A target fd that is not open fails with `.systemCall` and EBADF.
    func duplicate(_ fd: Int32) throws(VFIOTakeoverError) -> Int32 {
        let duplicate = cvfio_pidfd_getfd(pidfd, fd)
        guard duplicate >= 0 else {
            let error = SystemCallError.last("pidfd_getfd(\(pid), \(fd))")
            switch error.errno {
            case EPERM: throw .noPtraceRights(pid: pid, error)
            case ESRCH: throw .processGone(pid: pid)
            case ENOSYS: throw .kernelTooOld(error)
            default: throw .systemCall(error)
            }
        }
        return duplicate
    }
}
