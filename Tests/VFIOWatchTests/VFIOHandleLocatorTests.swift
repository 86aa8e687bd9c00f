import Glibc
import Testing
import VFIOWatch

@Suite struct VFIOHandleLocatorTests {
    @Test func qemuOnLinux61IsFoundThroughItsGroupFD() throws {
        let fake = try FakeVFIOHost()
        defer { fake.remove() }
        try fake.setIOMMUGroup(5)
        try fake.openQEMUGroupFiles(group: 5)
        let handle = try fake.locator.locate(vmmPID: fake.pid, host: fake.host)
        #expect(handle == VFIOHandle(method: .group, fd: 11, link: "/dev/vfio/5"))
    }

    @Test func anotherGroupIsNotThisDevice() throws {
        let fake = try FakeVFIOHost()
        defer { fake.remove() }
        try fake.setIOMMUGroup(5)
        try fake.openQEMUGroupFiles(group: 57)  // /dev/vfio/57 must not pass for group 5.
        #expect(throws: VFIOTakeoverError.notAssigned(fake.host, pid: fake.pid)) {
            try fake.locator.locate(vmmPID: fake.pid, host: fake.host)
        }
    }

    @Test func aNoIOMMUGroupNodeIsFound() throws {
        let fake = try FakeVFIOHost()
        defer { fake.remove() }
        try fake.setIOMMUGroup(0)
        try fake.open(20, "/dev/vfio/noiommu-0")
        #expect(try fake.locator.locate(vmmPID: fake.pid, host: fake.host).method == .group)
    }

    @Test func fdinfoSyspathNamesTheDeviceOnNewerKernels() throws {
        let fake = try FakeVFIOHost(host: "0000:01:00.0")
        defer { fake.remove() }
        try fake.setIOMMUGroup(5)
        // The group fd is there too (QEMU 7.2 on 6.18): the device's own fd wins.
        try fake.openQEMUGroupFiles(
            group: 5, deviceFDInfo: "vfio-device-syspath: /sys/devices/pci0000:00/0000:00:02.0/0000:02:00.0\n")
        try fake.open(30, "anon_inode:[vfio-device]",
                      extraFDInfo: "vfio-device-syspath: /sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0\n")
        #expect(try fake.locator.locate(vmmPID: fake.pid, host: fake.host)
            == VFIOHandle(method: .fdinfo, fd: 30, link: "anon_inode:[vfio-device]"))
    }

    @Test func aSyspathThroughThePortIsNotThePort() throws {
        // The root port 0000:00:01.0 is on the path of the endpoint below it, and is not it.
        let fake = try FakeVFIOHost(host: "0000:00:01.0")
        defer { fake.remove() }
        try fake.open(12, "anon_inode:[vfio-device]",
                      extraFDInfo: "vfio-device-syspath: /sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0\n")
        #expect(throws: VFIOTakeoverError.notAssigned(fake.host, pid: fake.pid)) {
            try fake.locator.locate(vmmPID: fake.pid, host: fake.host)
        }
    }

    @Test func aCDevNodeIsMatchedThroughSysfs() throws {
        let fake = try FakeVFIOHost()
        defer { fake.remove() }
        try fake.addCDev("vfio3")
        try fake.open(0, "/dev/null")
        try fake.open(9, "/dev/iommu")
        try fake.open(10, "/dev/vfio/devices/vfio2")  // Another device's node.
        try fake.open(11, "/dev/vfio/devices/vfio3")
        #expect(try fake.locator.locate(vmmPID: fake.pid, host: fake.host)
            == VFIOHandle(method: .cdev, fd: 11, link: "/dev/vfio/devices/vfio3"))
    }

    @Test func aDeviceTheHostDoesNotHaveIsSaidSo() throws {
        let fake = try FakeVFIOHost()
        defer { fake.remove() }
        let other = try #require(HostAddress("0000:09:00.0"))
        #expect(throws: VFIOTakeoverError.noSuchHostDevice(other)) {
            try fake.locator.locate(vmmPID: fake.pid, host: other)
        }
    }

    @Test func aProcessWithoutProcEntryIsGone() throws {
        let fake = try FakeVFIOHost()
        defer { fake.remove() }
        #expect(throws: VFIOTakeoverError.processGone(pid: 999_999)) {
            try fake.locator.locate(vmmPID: 999_999, host: fake.host)
        }
    }

    @Test func aRealProcessWithoutVFIOFilesHoldsNoHandle() throws {
        let fake = try FakeVFIOHost()
        defer { fake.remove() }
        try fake.setIOMMUGroup(5)
        // This test process, through the real /proc: sockets, pipes, eventfds, no vfio.
        let locator = VFIOHandleLocator(procRoot: "/proc", sysfsRoot: fake.sysfsRoot)
        let error = #expect(throws: VFIOTakeoverError.self) {
            try locator.locate(vmmPID: getpid(), host: fake.host)
        }
        #expect(error == .notAssigned(fake.host, pid: getpid()))
        #expect(error?.description == "VMM process \(getpid()) holds no vfio handle for 0000:01:00.0: the device is not assigned to this VM")
    }
}
