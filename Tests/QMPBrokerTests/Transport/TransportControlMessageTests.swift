import Glibc
import Testing
@testable import QMPBroker

@Suite("Transport: SCM_RIGHTS layout")
struct TransportControlMessageTests {
    @Test func sizesMatchTheCMSGMacros() {
        // x86_64 and aarch64: cmsghdr is 16 bytes; CMSG_LEN(4) = 20, CMSG_SPACE(4) = 24.
        #expect(RightsControlMessage.headerLength == 16)
        #expect(RightsControlMessage.length(forDescriptors: 1) == 20)
        #expect(RightsControlMessage.space(forDescriptors: 1) == 24)
        #expect(RightsControlMessage.receiveSpace == 80, "QEMU's TCP_MAX_FDS (16) descriptors")
    }

    @Test func encodedDescriptorsDecodeInOrder() {
        let fds: [Int32] = [3, 42, 7, 1000, 5]
        let space = RightsControlMessage.space(forDescriptors: fds.count)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: space, alignment: 8)
        defer { buffer.deallocate() }
        RightsControlMessage.encode(fds, into: buffer.baseAddress!)
        #expect(RightsControlMessage.descriptors(in: UnsafeRawBufferPointer(buffer)) == fds)
    }

    @Test func aMessageClaimingMoreThanTheBufferYieldsOnlyWhatIsThere() {
        let space = RightsControlMessage.space(forDescriptors: 4)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: space, alignment: 8)
        defer { buffer.deallocate() }
        RightsControlMessage.encode([10, 11, 12, 13], into: buffer.baseAddress!)
        let cut = UnsafeRawBufferPointer(rebasing: buffer[..<RightsControlMessage.length(forDescriptors: 2)])
        #expect(RightsControlMessage.descriptors(in: cut) == [10, 11])
        #expect(RightsControlMessage.descriptors(in: UnsafeRawBufferPointer(rebasing: buffer[..<8])) == [])
    }
}
