import EventLoop
import Glibc

/// A VMM's handle on one vfio device: an fd number in the VMM's table, and how it was
/// recognised.
package struct VFIOHandle: Hashable, Sendable {
    package let method: VFIOTakeoverMethod
    /// The fd number in the VMM, for pidfd_getfd.
    package let fd: Int32
    /// Its `/proc/PID/fd` link text, to check that a duplicate is still the same file.
    package let link: String

    package init(method: VFIOTakeoverMethod, fd: Int32, link: String) {
        self.method = method
        self.fd = fd
        self.link = link
    }
}

/// Finds which of a VMM's open files is its handle on a host PCI device, from `/proc` and
/// sysfs alone (no ioctl, no rights beyond reading the VMM's `/proc/PID/fd`).
///
/// What it relies on, newest kernels first:
/// - `fdinfo`: Linux 6.18 prints `vfio-device-syspath: /sys/devices/.../DDDD:BB:DD.F` in
///   the fdinfo of every vfio device fd. Before that the fdinfo of an
///   `anon_inode:[vfio-device]` fd names no device, and `VFIO_DEVICE_GET_INFO` has no
///   address either.
/// - `cdev`: a device opened through `/dev/vfio/devices/vfioN` (Linux 6.6+, QEMU with
///   iommufd); sysfs names its node in `<device>/vfio-dev/vfioN`.
/// - `group`: the legacy API every kernel has: the device's IOMMU group is the basename
///   of `<device>/iommu_group`, and the VMM holds `/dev/vfio/<group>` open (the kernel
///   lets only one process open a group, so that fd is the VMM's own).
package struct VFIOHandleLocator: Sendable {
    package let procRoot: String
    package let sysfsRoot: String

    static let anonDeviceLink = "anon_inode:[vfio-device]"
    static let syspathKey = "vfio-device-syspath:"

    package init(procRoot: String = "/proc", sysfsRoot: String = "/sys") {
        self.procRoot = procRoot
        self.sysfsRoot = sysfsRoot
    }

    package func locate(vmmPID pid: pid_t, host: HostAddress) throws(VFIOTakeoverError) -> VFIOHandle {
        let device = "\(sysfsRoot)/bus/pci/devices/\(host)"
        guard access(device, F_OK) == 0 else { throw .noSuchHostDevice(host) }
        let files = try openFiles(of: pid)

        for file in files where Self.isDeviceLink(file.link) {
            if try fdinfoNames(host, path: "\(procRoot)/\(pid)/fdinfo/\(file.fd)", pid: pid) {
                return VFIOHandle(method: .fdinfo, fd: file.fd, link: file.link)
            }
        }
        // Missing before 6.6 or without CONFIG_VFIO_DEVICE_CDEV: then no cdev fd can match.
        let nodes = (try? PathReader.entries(of: "\(device)/vfio-dev").get()) ?? []
        let nodeLinks = Set(nodes.map { "/dev/vfio/devices/\($0)" })
        if let file = files.first(where: { nodeLinks.contains($0.link) }) {
            return VFIOHandle(method: .cdev, fd: file.fd, link: file.link)
        }
        if case .success(let groupLink) = PathReader.readLink("\(device)/iommu_group"),
           let group = groupLink.split(separator: "/").last {
            // A no-IOMMU group's node is named `noiommu-N`.
            let groupLinks: Set = ["/dev/vfio/\(group)", "/dev/vfio/noiommu-\(group)"]
            if let file = files.first(where: { groupLinks.contains($0.link) }) {
                return VFIOHandle(method: .group, fd: file.fd, link: file.link)
            }
        }
        throw .notAssigned(host, pid: pid)
    }

    struct OpenFile: Equatable {
        let fd: Int32
        /// The `/proc/PID/fd/N` link text: a path, or `anon_inode:[...]`.
        let link: String
    }

    /// The VMM's open files, lowest fd first. Files closed during the scan are left out.
    func openFiles(of pid: pid_t) throws(VFIOTakeoverError) -> [OpenFile] {
        let directory = "\(procRoot)/\(pid)/fd"
        let names: [String]
        switch PathReader.entries(of: directory) {
        case .success(let entries): names = entries
        case .failure(let error): throw processError(error, pid: pid)
        }
        var files: [OpenFile] = []
        for name in names {
            guard let fd = Int32(name) else { continue }
            switch PathReader.readLink("\(directory)/\(name)") {
            case .success(let link): files.append(OpenFile(fd: fd, link: link))
            case .failure(let error) where error.errno == ENOENT: continue
            case .failure(let error): throw processError(error, pid: pid)
            }
        }
        return files.sorted { $0.fd < $1.fd }
    }

    /// True when this process's `fd` is still the file `handle` found in the VMM: the VMM
    /// may have closed it and opened another under the same number since the scan.
    func isSameFile(_ fd: Int32, as handle: VFIOHandle, host: HostAddress) throws(VFIOTakeoverError) -> Bool {
        guard case .success(let link) = PathReader.readLink("/proc/self/fd/\(fd)"), link == handle.link else {
            return false
        }
        switch handle.method {
        case .fdinfo: return try fdinfoNames(host, path: "/proc/self/fdinfo/\(fd)", pid: getpid())
        case .cdev, .group: return true
        }
    }

    static func isDeviceLink(_ link: String) -> Bool {
        link == anonDeviceLink || link.hasPrefix("/dev/vfio/devices/")
    }

    /// True when the fdinfo file has a `vfio-device-syspath` line ending in `host`.
    private func fdinfoNames(_ host: HostAddress, path: String, pid: pid_t) throws(VFIOTakeoverError) -> Bool {
        let bytes: [UInt8]
        switch PathReader.bytes(path, limit: PathReader.attributeLimit) {
        case .success(let read): bytes = read
        case .failure(let error) where error.errno == ENOENT: return false
        case .failure(let error): throw processError(error, pid: pid)
        }
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(Self.syspathKey) {
            // The last component is the device itself; the ones before are the ports above it.
            let path = line.dropFirst(Self.syspathKey.count).split(whereSeparator: \.isWhitespace).first ?? ""
            return path.split(separator: "/").last.map(String.init) == host.description
        }
        return false
    }

    private func processError(_ error: SystemCallError, pid: pid_t) -> VFIOTakeoverError {
        switch error.errno {
        case ENOENT, ESRCH: .processGone(pid: pid)
        case EACCES, EPERM: .noPtraceRights(pid: pid, error)
        default: .cannotInspect(error)
        }
    }
}
