import ErrorEvents
import QMPWire

/// One of a device's events as its machine said it, waiting for its turn in the device's
/// `OrderedSlots`: a client never hears of a recovery before the error, even when the
/// error waits for QEMU to answer its injection.
enum DeviceAnnouncement {
    /// `VFIO_PCI_ERROR`, which is also recorded in the history when it goes.
    case pciError(PCIErrorEvent, notes: [String])
    case event(String, JSON)
}
