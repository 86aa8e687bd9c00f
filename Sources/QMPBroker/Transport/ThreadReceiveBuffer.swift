import EventLoop
import Glibc

/// The memory `recvmsg` reads into: one block per thread, shared by every connection.
///
/// Read handlers consume their bytes synchronously, so a buffer only needs to live as
/// long as one handler call. A 64 KiB buffer per connection would cost hundreds of MiB
/// for 1000 VMs with several clients each; per thread it is one block per loop
/// thread, and there are only a handful of those.
enum ThreadReceiveBuffer {
    /// Big enough that a multi-MiB reply needs few syscalls, small enough to stay cheap.
    static let dataCapacity = 64 * 1024

    struct Buffers {
        let data: UnsafeMutableRawBufferPointer
        let control: UnsafeMutableRawBufferPointer
    }

    /// Layout of a block: an in-use flag, the control buffer, then the data buffer.
    /// The flag's slot is 16 bytes so the control buffer stays aligned for `cmsghdr`.
    private static let flagSlot = 16
    private static let controlSlot = (RightsControlMessage.receiveSpace + 15) & ~15
    private static let blockSize = flagSlot + controlSlot + dataCapacity

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        // The destructor frees a thread's block when the thread ends (a loop shut down).
        let result = pthread_key_create(&key) { block in block?.deallocate() }
        precondition(result == 0, "pthread_key_create: \(SystemCallError.reason(forErrno: result))")
        return key
    }()

    /// Runs `body` with this thread's buffers. The buffers are valid only during the call.
    static func withBuffers<Result>(_ body: (Buffers) -> Result) -> Result {
        let block = threadBlock()
        if block.load(as: UInt8.self) != 0 {
            // Re-entered on the same thread (nothing in the transport does this, but a
            // handler could): never hand out memory a caller up the stack is still reading.
            let spare = allocateBlock()
            defer { spare.deallocate() }
            return body(buffers(in: spare))
        }
        block.storeBytes(of: 1, as: UInt8.self)
        defer { block.storeBytes(of: 0, as: UInt8.self) }
        return body(buffers(in: block))
    }

    private static func threadBlock() -> UnsafeMutableRawPointer {
        if let block = pthread_getspecific(key) { return block }
        let block = allocateBlock()
        pthread_setspecific(key, block)
        return block
    }

    private static func allocateBlock() -> UnsafeMutableRawPointer {
        let block = UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 16)
        block.storeBytes(of: 0, as: UInt8.self)
        return block
    }

    private static func buffers(in block: UnsafeMutableRawPointer) -> Buffers {
        Buffers(
            data: UnsafeMutableRawBufferPointer(start: block + flagSlot + controlSlot, count: dataCapacity),
            control: UnsafeMutableRawBufferPointer(start: block + flagSlot, count: RightsControlMessage.receiveSpace))
    }
}
