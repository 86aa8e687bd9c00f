import EventLoop
import Glibc

/// Why the broker could not take a device's error trigger over from its VMM.
///
/// `description` is for operators: it surfaces in QMP errors and in `query-vfio-devices`,
/// so it names the device and the process and says what to change.
package enum VFIOTakeoverError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No ptrace-attach rights over the VMM: reading its fds or pidfd_getfd was refused.
    case noPtraceRights(pid: pid_t, SystemCallError)
    /// The VMM process does not exist (any more).
    case processGone(pid: pid_t)
    /// The kernel has no pidfd_open (5.3) or pidfd_getfd (5.6).
    case kernelTooOld(SystemCallError)
    /// The host has no PCI device at this address.
    case noSuchHostDevice(HostAddress)
    /// The VMM holds no vfio handle for this device: it is not assigned to this VMM.
    case notAssigned(HostAddress, pid: pid_t)
    /// The VMM closed its handle between the broker finding it and duplicating it.
    case handleClosed(HostAddress, pid: pid_t)
    /// The device has no error interrupt (vfio-pci offers one only for PCI Express devices).
    case noErrorInterrupt(HostAddress)
    /// `/proc` or sysfs could not be read.
    case cannotInspect(SystemCallError)
    /// A vfio ioctl or another system call failed.
    case systemCall(SystemCallError)

    package var description: String {
        switch self {
        case .noPtraceRights(let pid, let error):
            "No right to take over the error trigger of VMM process \(pid) (\(error)): the broker "
                + "needs ptrace rights over QEMU: run it as root or with CAP_SYS_PTRACE (as QEMU's own "
                + "user only when kernel.yama.ptrace_scope is 0; ptrace_scope 3 forbids it for everyone), "
                + "and check that no AppArmor or SELinux policy denies it ptrace"
        case .processGone(let pid):
            "VMM process \(pid) does not exist"
        case .kernelTooOld(let error):
            "This kernel cannot duplicate another process's file descriptor (\(error)): "
                + "pidfd_getfd needs Linux 5.6 or later"
        case .noSuchHostDevice(let host):
            "No PCI device \(host) on this host"
        case .notAssigned(let host, let pid):
            "VMM process \(pid) holds no vfio handle for \(host): the device is not assigned to this VM"
        case .handleClosed(let host, let pid):
            "VMM process \(pid) closed its vfio handle for \(host) while the broker was taking it over"
        case .noErrorInterrupt(let host):
            "\(host) has no vfio error interrupt (vfio-pci offers one only for PCI Express devices)"
        case .cannotInspect(let error):
            "Cannot find the VMM's vfio handle: \(error)"
        case .systemCall(let error):
            "Cannot take over the error trigger: \(error)"
        }
    }
}
