import Glibc
import Testing
import VFIOWatch

/// A fake `/proc` and sysfs for one VMM and one vfio device, made of real directories,
/// files and symlinks, laid out as the kernel lays them out.
struct FakeVFIOHost {
    let root: TemporaryDirectory
    let pid: pid_t
    let host: HostAddress
    var procRoot: String { root.path + "/proc" }
    var sysfsRoot: String { root.path + "/sys" }
    var locator: VFIOHandleLocator { VFIOHandleLocator(procRoot: procRoot, sysfsRoot: sysfsRoot) }
    private var device: String { "sys/bus/pci/devices/\(host)" }

    init(pid: pid_t = 4242, host: String = "0000:01:00.0") throws {
        root = try TemporaryDirectory()
        self.pid = pid
        self.host = try #require(HostAddress(host))
        try root.makeDirectory("proc/\(pid)/fd")
        try root.makeDirectory("proc/\(pid)/fdinfo")
        try root.makeDirectory(device)
    }

    /// An open file of the VMM: `/proc/PID/fd/N` links to `link`; fdinfo as 6.1 prints it,
    /// plus `extraFDInfo`.
    func open(_ fd: Int32, _ link: String, extraFDInfo: String = "") throws {
        try root.symlink("proc/\(pid)/fd/\(fd)", to: link)
        try root.write("proc/\(pid)/fdinfo/\(fd)", "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\n" + extraFDInfo)
    }

    /// QEMU 7.2's files for a device it uses through the group API (SPEC 10).
    func openQEMUGroupFiles(group: Int, firstFD: Int32 = 10, deviceFDInfo: String = "") throws {
        try open(0, "/dev/null")
        try open(firstFD, "/dev/vfio/vfio")
        try open(firstFD + 1, "/dev/vfio/\(group)")
        try open(firstFD + 2, "anon_inode:[vfio-device]", extraFDInfo: deviceFDInfo)
        for fd in firstFD + 3...firstFD + 5 { try open(fd, "anon_inode:[eventfd]") }
    }

    /// `<device>/iommu_group`, linking to the group as sysfs does.
    func setIOMMUGroup(_ group: Int) throws {
        try root.symlink("\(device)/iommu_group", to: "../../../../kernel/iommu_groups/\(group)")
    }

    /// `<device>/vfio-dev/vfioN`, as a 6.6+ kernel with the vfio cdev makes it.
    func addCDev(_ name: String) throws {
        try root.makeDirectory("\(device)/vfio-dev/\(name)")
    }

    func remove() { root.remove() }
}
