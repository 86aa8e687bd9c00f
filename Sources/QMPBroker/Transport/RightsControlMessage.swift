import Glibc

/// SCM_RIGHTS ancillary data laid out the way the kernel expects.
///
/// Swift cannot import the CMSG_* macros, so their arithmetic lives here: a `cmsghdr`
/// padded to `size_t` alignment, then the descriptors as packed 32-bit ints.
enum RightsControlMessage {
    /// QEMU reads at most this many descriptors per message (`TCP_MAX_FDS` in
    /// chardev/char-socket.c); a control buffer of the same size means a client
    /// gets the same truncation from the broker that it would get from QEMU.
    static let maxReceivedDescriptors = 16

    /// CMSG_ALIGN: control data is padded to the alignment of `size_t`.
    static func align(_ length: Int) -> Int {
        let unit = MemoryLayout<Int>.size
        return (length + unit - 1) & ~(unit - 1)
    }

    /// CMSG_LEN(0): where the descriptors start within a message.
    static let headerLength = align(MemoryLayout<cmsghdr>.size)

    /// CMSG_LEN: the `cmsg_len` of a message carrying `count` descriptors.
    static func length(forDescriptors count: Int) -> Int {
        headerLength + count * MemoryLayout<Int32>.size
    }

    /// CMSG_SPACE: the buffer (`msg_controllen`) a message carrying `count` descriptors needs.
    static func space(forDescriptors count: Int) -> Int {
        headerLength + align(count * MemoryLayout<Int32>.size)
    }

    /// The control buffer `recvmsg` gets: exactly QEMU's limit.
    static let receiveSpace = space(forDescriptors: maxReceivedDescriptors)

    /// Writes one SCM_RIGHTS message carrying `fds` at `buffer`, which must hold
    /// `space(forDescriptors: fds.count)` bytes aligned for `cmsghdr`.
    static func encode(_ fds: [Int32], into buffer: UnsafeMutableRawPointer) {
        let space = space(forDescriptors: fds.count)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: space)
        var header = cmsghdr()
        header.cmsg_len = length(forDescriptors: fds.count)
        header.cmsg_level = SOL_SOCKET
        header.cmsg_type = Int32(SCM_RIGHTS)
        buffer.storeBytes(of: header, as: cmsghdr.self)
        for (index, fd) in fds.enumerated() {
            buffer.storeBytes(of: fd, toByteOffset: headerLength + index * MemoryLayout<Int32>.size, as: Int32.self)
        }
    }

    /// Every descriptor in the SCM_RIGHTS messages of `control` (the `msg_controllen`
    /// bytes that `recvmsg` filled in). Messages of other types are skipped.
    static func descriptors(in control: UnsafeRawBufferPointer) -> [Int32] {
        var fds: [Int32] = []
        var offset = 0
        while offset + headerLength <= control.count {
            let header = control.loadUnaligned(fromByteOffset: offset, as: cmsghdr.self)
            guard header.cmsg_len >= headerLength else { break }
            // A truncated message may claim more than the buffer holds; trust only what is there.
            let end = min(offset + header.cmsg_len, control.count)
            if header.cmsg_level == SOL_SOCKET && header.cmsg_type == Int32(SCM_RIGHTS) {
                let count = (end - offset - headerLength) / MemoryLayout<Int32>.size
                for index in 0..<count {
                    fds.append(control.loadUnaligned(
                        fromByteOffset: offset + headerLength + index * MemoryLayout<Int32>.size, as: Int32.self))
                }
            }
            offset += align(header.cmsg_len)
        }
        return fds
    }
}
