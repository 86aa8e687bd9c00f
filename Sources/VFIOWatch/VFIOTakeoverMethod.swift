/// How the broker found and got its handle on a VMM's vfio device.
package enum VFIOTakeoverMethod: String, Hashable, Sendable, CaseIterable {
    /// The VMM's device fd, named by its `vfio-device-syspath` fdinfo line (Linux 6.18+):
    /// duplicated, so it is the VMM's own open file.
    case fdinfo
    /// The VMM's `/dev/vfio/devices/vfioN` fd (the cdev and iommufd API, Linux 6.6+):
    /// duplicated, so it is the VMM's own open file.
    case cdev
    /// The VMM's `/dev/vfio/<group>` fd, duplicated just long enough to open the device a
    /// second time with `VFIO_GROUP_GET_DEVICE_FD` (the legacy API, e.g. QEMU 7.2 on 6.1).
    case group
}
