import BrokerTesting
import EventLoop
import Glibc
import QMPBroker
import Testing
@testable import VFIOWatch

/// The real system calls of a takeover, against real child processes. The vfio ioctls
/// themselves need a device bound to vfio-pci: the host end-to-end test proves them.
@Suite struct VFIOErrorTriggerTests {
    /// The fd number a child inherits the test's eventfd at.
    static let childFD: Int32 = 50

    /// A `sleep` holding `fd` at `childFD`, as QEMU holds its vfio files.
    static func child(holding fd: Int32) throws -> ChildProcess {
        let child = try ChildProcess(["sleep", "60"], passing: [childFD: fd])
        // posix_spawn returns once the child has exec'd, with its fd table in place.
        let ours = try PathReader.readLink("/proc/self/fd/\(fd)").get()
        try #require(PathReader.readLink("/proc/\(child.pid)/fd/\(childFD)").get() == ours)
        return child
    }

    /// How many of this process's fds are open on the file `fd` is open on (by inode: other
    /// tests open and close fds meanwhile, so a plain count would race).
    static func fdsOpen(onFileOf fd: Int32) throws -> Int {
        var wanted = stat()
        try #require(fstat(fd, &wanted) == 0)
        return try PathReader.entries(of: "/proc/self/fd").get().filter { name in
            var status = stat()
            return stat("/proc/self/fd/\(name)", &status) == 0
                && status.st_dev == wanted.st_dev && status.st_ino == wanted.st_ino
        }.count
    }

    @Test func pidfdGetfdDuplicatesTheChildsOwnEventFD() throws {
        let original = try EventFD.makeEventFD()
        defer { close(original) }
        let child = try Self.child(holding: original)
        let process = try ProcessHandle(pid: child.pid)
        let duplicate = try process.duplicate(Self.childFD)
        defer { close(duplicate) }
        #expect(duplicate != original)
        // The same open file: what is written on one is read on the other.
        try EventFD.signal(duplicate, adding: 7)
        #expect(try EventFD.drain(original) == 7)
        try EventFD.signal(original, adding: 2)
        #expect(try EventFD.drain(duplicate) == 2)
        // pidfd_getfd gives a close-on-exec fd.
        #expect(fcntl(duplicate, F_GETFD) & FD_CLOEXEC != 0)
    }

    @Test func anFDTheChildDoesNotHaveIsEBADF() throws {
        let original = try EventFD.makeEventFD()
        defer { close(original) }
        let child = try Self.child(holding: original)
        let process = try ProcessHandle(pid: child.pid)
        let error = #expect(throws: VFIOTakeoverError.self) { try process.duplicate(77) }
        guard case .systemCall(let call) = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(call.errno == EBADF)
    }

    @Test func aDeadProcessIsGone() throws {
        let child = try ChildProcess(["sleep", "60"])
        let pid = child.pid
        child.kill(signal: SIGKILL)  // Killed and reaped: the pid names nobody now.
        #expect(throws: VFIOTakeoverError.processGone(pid: pid)) { _ = try ProcessHandle(pid: pid) }
        let fake = try FakeVFIOHost(pid: pid)
        defer { fake.remove() }
        let eventFD = try EventFD.makeEventFD()
        defer { close(eventFD) }
        let error = #expect(throws: VFIOTakeoverError.self) {
            _ = try VFIOErrorTrigger.takeOver(vmmPID: pid, host: fake.host, eventFD: eventFD, locator: fake.locator)
        }
        #expect(error == .processGone(pid: pid))
        #expect(error?.description == "VMM process \(pid) does not exist")
    }

    @Test func aRealVMMWithoutVFIOFilesGetsTheClearError() throws {
        let held = try EventFD.makeEventFD()
        defer { close(held) }
        let child = try Self.child(holding: held)
        let fake = try FakeVFIOHost()
        defer { fake.remove() }
        try fake.setIOMMUGroup(5)
        let locator = VFIOHandleLocator(procRoot: "/proc", sysfsRoot: fake.sysfsRoot)
        let eventFD = try EventFD.makeEventFD()
        defer { close(eventFD) }
        #expect(throws: VFIOTakeoverError.notAssigned(fake.host, pid: child.pid)) {
            _ = try VFIOErrorTrigger.takeOver(vmmPID: child.pid, host: fake.host, eventFD: eventFD, locator: locator)
        }
    }

    @Test func aHandleReplacedSinceTheScanIsRefusedAndItsDuplicateClosed() throws {
        // /proc said fd 50 is the group; the real fd 50 is another file by the time it is taken.
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("held", "")
        let held = open(directory.path + "/held", O_RDONLY | O_CLOEXEC)
        try #require(held >= 0)
        defer { close(held) }
        let child = try Self.child(holding: held)
        let fake = try FakeVFIOHost(pid: child.pid)
        defer { fake.remove() }
        try fake.setIOMMUGroup(5)
        try fake.open(Self.childFD, "/dev/vfio/5")
        let eventFD = try EventFD.makeEventFD()
        defer { close(eventFD) }
        #expect(throws: VFIOTakeoverError.handleClosed(fake.host, pid: child.pid)) {
            _ = try VFIOErrorTrigger.takeOver(vmmPID: child.pid, host: fake.host, eventFD: eventFD, locator: fake.locator)
        }
        // Only the test's own fd is left on that file: the duplicate was closed.
        #expect(try Self.fdsOpen(onFileOf: held) == 1)
    }

    @Test func aHandleClosedSinceTheScanIsSaidSo() throws {
        let held = try EventFD.makeEventFD()
        defer { close(held) }
        let child = try Self.child(holding: held)
        let fake = try FakeVFIOHost(pid: child.pid)
        defer { fake.remove() }
        try fake.addCDev("vfio0")
        try fake.open(77, "/dev/vfio/devices/vfio0")  // The child has no fd 77.
        let eventFD = try EventFD.makeEventFD()
        defer { close(eventFD) }
        let error = #expect(throws: VFIOTakeoverError.self) {
            _ = try VFIOErrorTrigger.takeOver(vmmPID: child.pid, host: fake.host, eventFD: eventFD, locator: fake.locator)
        }
        #expect(error == .handleClosed(fake.host, pid: child.pid))
        #expect(error?.description.contains("closed its vfio handle for 0000:01:00.0") == true)
    }

    @Test func theVFIOIoctlsReachTheKernel() throws {
        // An eventfd has no ioctls: each wrapper must come back with the kernel's ENOTTY.
        let fd = try EventFD.makeEventFD()
        defer { close(fd) }
        let host = try #require(HostAddress("0000:01:00.0"))
        let failures: [SystemCallError?] = [
            catching { () throws(SystemCallError) in _ = try VFIODeviceControl.openDevice(group: fd, host: host) },
            catching { () throws(SystemCallError) in _ = try VFIODeviceControl.errorIRQCount(device: fd) },
            catching { () throws(SystemCallError) in try VFIODeviceControl.armErrorTrigger(device: fd, eventFD: fd) },
            catching { () throws(SystemCallError) in try VFIODeviceControl.disarmErrorTrigger(device: fd) },
        ]
        #expect(failures.map(\.?.errno) == [ENOTTY, ENOTTY, ENOTTY, ENOTTY])
        #expect(failures[0]?.description == "VFIO_GROUP_GET_DEVICE_FD(0000:01:00.0): Inappropriate ioctl for device")
    }

    @Test func operatorTextsSayWhatToChange() {
        let denied = VFIOTakeoverError.noPtraceRights(pid: 1234, SystemCallError("pidfd_getfd(1234, 12)", errno: EPERM))
        #expect(denied.description.contains("process 1234"))
        #expect(denied.description.contains("root or with CAP_SYS_PTRACE"))
        #expect(denied.description.contains("kernel.yama.ptrace_scope"))
        let old = VFIOTakeoverError.kernelTooOld(SystemCallError("pidfd_getfd(1234, 12)", errno: ENOSYS))
        #expect(old.description.contains("Linux 5.6"))
        let host = HostAddress("0000:01:00.0")!
        #expect(VFIOTakeoverError.noErrorInterrupt(host).description.contains("PCI Express"))
        #expect(ErrorTriggerStatus.takeoverFailed(denied)
            == ErrorTriggerStatus(mode: .takeover, active: false, error: denied.description))
    }
}

private func catching(_ body: () throws(SystemCallError) -> Void) -> SystemCallError? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}
