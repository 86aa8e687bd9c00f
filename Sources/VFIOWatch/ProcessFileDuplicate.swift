import Glibc

/// Another process's open file, duplicated into this one with `pidfd_open` +
/// `pidfd_getfd` (close-on-exec; the caller owns it). Needs ptrace-attach rights over
/// the process, as the error-trigger takeover does. The broker uses it for QEMU's fd 2.
package func duplicateFileDescriptor(_ fd: Int32, ofProcess pid: pid_t) throws(VFIOTakeoverError) -> Int32 {
    let process = try ProcessHandle(pid: pid)
    return try process.duplicate(fd)
}
