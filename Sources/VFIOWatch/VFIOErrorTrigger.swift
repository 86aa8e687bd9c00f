import EventLoop
import Glibc

/// The error interrupt of one host vfio device, taken over from the VMM that owns the
/// device: from `takeOver` on, the kernel signals the broker's eventfd for every AER
/// error instead of the VMM's (stock QEMU stops the VM on the first one, SPEC 10).
///
/// It owns the broker's own fd for the device and keeps it open for as long as the
/// device is watched. That fd keeps the device open in the kernel: a host unbind, or
/// the VMM opening the device's group again (device_add after device_del), waits or
/// fails with EBUSY until it is closed. So release the trigger as soon as the VMM lets
/// the device go (`DEVICE_DELETED`, `vfio-device-del`, the VMM's exit). `release()`
/// (or dropping the value) disarms the interrupt and closes the fd, exactly once.
package struct VFIOErrorTrigger: ~Copyable, Sendable {
    package let host: HostAddress
    package let vmmPID: pid_t
    package let method: VFIOTakeoverMethod
    private let deviceFD: Int32

    /// Finds the VMM's handle on `host`, gets the broker's own fd for the device, and arms
    /// the error interrupt with `eventFD`.
    ///
    /// `eventFD` stays the caller's (an `EventFDWatcher` owns it, typically): the kernel
    /// holds its own reference, so it may be closed before or after the trigger is
    /// released. The request interrupt (REQ) is left to the VMM.
    package static func takeOver(
        vmmPID: pid_t,
        host: HostAddress,
        eventFD: Int32,
        locator: VFIOHandleLocator = VFIOHandleLocator()
    ) throws(VFIOTakeoverError) -> VFIOErrorTrigger {
        let process = try ProcessHandle(pid: vmmPID)
        let handle = try locator.locate(vmmPID: vmmPID, host: host)
        let deviceFD = try openDevice(handle, of: process, host: host, locator: locator)
        do throws(VFIOTakeoverError) {
            guard try call({ () throws(SystemCallError) in try VFIODeviceControl.errorIRQCount(device: deviceFD) }) > 0 else {
                throw .noErrorInterrupt(host)
            }
            try call { () throws(SystemCallError) in try VFIODeviceControl.armErrorTrigger(device: deviceFD, eventFD: eventFD) }
        } catch {
            close(deviceFD)
            throw error
        }
        return VFIOErrorTrigger(host: host, vmmPID: vmmPID, method: handle.method, deviceFD: deviceFD)
    }

    /// For `query-vfio-devices`.
    package var status: ErrorTriggerStatus { .takenOver(by: method) }

    private init(host: HostAddress, vmmPID: pid_t, method: VFIOTakeoverMethod, deviceFD: Int32) {
        self.host = host
        self.vmmPID = vmmPID
        self.method = method
        self.deviceFD = deviceFD
    }

    /// Disarms the error interrupt and closes the broker's device fd. Until the VMM arms
    /// it again (QEMU does so only when it realizes the device), nobody hears the
    /// device's errors. Returns why disarming failed, for the log; the fd is closed anyway.
    @discardableResult
    package consuming func release() -> SystemCallError? {
        let failure = Self.disarmAndClose(deviceFD)
        discard self
        return failure
    }

    deinit {
        _ = Self.disarmAndClose(deviceFD)
    }

    private static func disarmAndClose(_ deviceFD: Int32) -> SystemCallError? {
        defer { close(deviceFD) }
        do {
            try VFIODeviceControl.disarmErrorTrigger(device: deviceFD)
            return nil
        } catch {
            return error
        }
    }

    /// The broker's own fd for the device behind `handle`.
    private static func openDevice(
        _ handle: VFIOHandle, of process: borrowing ProcessHandle, host: HostAddress, locator: VFIOHandleLocator
    ) throws(VFIOTakeoverError) -> Int32 {
        let duplicate: Int32
        do {
            duplicate = try process.duplicate(handle.fd)
        } catch .systemCall(let error) where error.errno == EBADF {
            throw .handleClosed(host, pid: process.pid)
        }
        let same: Bool
        do {
            same = try locator.isSameFile(duplicate, as: handle, host: host)
        } catch {
            close(duplicate)
            throw error
        }
        guard same else {
            close(duplicate)
            throw .handleClosed(host, pid: process.pid)
        }
        switch handle.method {
        case .fdinfo, .cdev:
            return duplicate
        case .group:
            // The group is only the way in: holding it would keep the VMM's container alive.
            defer { close(duplicate) }
            do {
                return try VFIODeviceControl.openDevice(group: duplicate, host: host)
            } catch {
                // ENODEV: the group has no such device bound to vfio.
                throw error.errno == ENODEV ? .notAssigned(host, pid: process.pid) : .systemCall(error)
            }
        }
    }

    /// Runs a vfio ioctl wrapper, reporting its failure as a takeover error.
    private static func call<Result>(_ body: () throws(SystemCallError) -> Result) throws(VFIOTakeoverError) -> Result {
        do {
            return try body()
        } catch {
            throw .systemCall(error)
        }
    }
}
