import Glibc

/// `struct sockaddr_nl` (linux/netlink.h), which Glibc's Swift module does not include:
/// `nl_family` (u16), `nl_pad` (u16), `nl_pid` (u32), `nl_groups` (u32), 12 bytes.
/// Built and read byte by byte so its layout is C's, not whatever Swift picks.
struct NetlinkAddress {
    /// `NETLINK_KOBJECT_UEVENT`.
    static let kobjectUEventProtocol: Int32 = 15
    /// The multicast group the kernel sends uevents to (udev re-broadcasts on 2).
    static let kernelUEventGroup: UInt32 = 1
    static let size = 12

    /// The sender's port id; 0 is the kernel.
    var portID: UInt32
    var groups: UInt32

    init(portID: UInt32, groups: UInt32) {
        self.portID = portID
        self.groups = groups
    }

    /// Reads what `recvfrom` filled in; nil if it is not a netlink address.
    init?(bytes: UnsafeRawBufferPointer, length: Int) {
        guard length >= Self.size,
              bytes.loadUnaligned(fromByteOffset: 0, as: UInt16.self) == UInt16(AF_NETLINK) else { return nil }
        portID = bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        groups = bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
    }

    /// Calls `body` with the address as a `sockaddr` pointer and its length.
    func withSocketAddress<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        var storage = sockaddr_storage()
        return withUnsafeMutableBytes(of: &storage) { raw in
            raw.storeBytes(of: UInt16(AF_NETLINK), toByteOffset: 0, as: UInt16.self)
            raw.storeBytes(of: 0, toByteOffset: 2, as: UInt16.self)
            raw.storeBytes(of: portID, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: groups, toByteOffset: 8, as: UInt32.self)
            return body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(Self.size))
        }
    }
}
