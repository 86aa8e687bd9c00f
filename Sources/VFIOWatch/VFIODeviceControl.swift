import CVFIO
import EventLoop
import Glibc

/// The vfio ioctls the takeover needs, on fds the caller owns.
enum VFIODeviceControl {
    /// The device's error interrupt (`VFIO_PCI_ERR_IRQ_INDEX`). Its request interrupt
    /// (`VFIO_PCI_REQ_IRQ_INDEX`, 4) is never touched: it stays the VMM's, so that a host
    /// unbind still unplugs the device from the guest.
    static let errorIRQIndex = cvfio_err_irq_index

    /// Opens `host` through its group: a second open file for the device, which vfio
    /// allows (`open_count` counts the users; only the first runs the driver's open).
    static func openDevice(group: Int32, host: HostAddress) throws(SystemCallError) -> Int32 {
        let fd = cvfio_group_get_device_fd(group, host.description)
        guard fd >= 0 else { throw .last("VFIO_GROUP_GET_DEVICE_FD(\(host))") }
        return fd
    }

    /// How many error interrupts the device has: 1 for a PCI Express device, else 0 (6.1
    /// then fails with EINVAL, which is reported as 0 too).
    static func errorIRQCount(device: Int32) throws(SystemCallError) -> UInt32 {
        var count: UInt32 = 0
        guard cvfio_irq_count(device, errorIRQIndex, &count) == 0 else {
            if errno == EINVAL { return 0 }
            throw .last("VFIO_DEVICE_GET_IRQ_INFO(ERR)")
        }
        return count
    }

    /// Makes `eventFD` the error trigger: the device has one (`vdev->err_trigger`), so it
    /// replaces whatever any other user of the device armed. The kernel takes its own
    /// reference on the eventfd; closing `eventFD` later does not disarm it.
    static func armErrorTrigger(device: Int32, eventFD: Int32) throws(SystemCallError) {
        guard cvfio_set_irq_trigger(device, errorIRQIndex, eventFD) == 0 else {
            throw .last("VFIO_DEVICE_SET_IRQS(ERR, eventfd)")
        }
    }

    /// Removes the error trigger (fd -1: the kernel drops it, armed or not).
    static func disarmErrorTrigger(device: Int32) throws(SystemCallError) {
        guard cvfio_set_irq_trigger(device, errorIRQIndex, -1) == 0 else {
            throw .last("VFIO_DEVICE_SET_IRQS(ERR, none)")
        }
    }
}
