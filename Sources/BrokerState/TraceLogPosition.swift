/// How far the broker has read one VM's trace log, and which file that was: after a
/// restart it resumes there, so lines QEMU wrote meanwhile are still read.
public struct TraceLogPosition: Hashable, Sendable {
    public var vm: String
    /// `st_dev` and `st_ino` of the file, as stat returns them.
    public var fileDevice: UInt64
    public var fileInode: UInt64
    /// Bytes consumed (up to the end of the last whole line).
    public var offset: Int64

    public init(vm: String, fileDevice: UInt64, fileInode: UInt64, offset: Int64) {
        self.vm = vm
        self.fileDevice = fileDevice
        self.fileInode = fileInode
        self.offset = offset
    }
}
