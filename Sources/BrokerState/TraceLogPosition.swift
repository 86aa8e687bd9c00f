/// How far the broker has read one VM's trace log, and which file that was: after a
/// restart it resumes there, so lines QEMU wrote meanwhile are still read.
package struct TraceLogPosition: Hashable, Sendable {
    package var vm: String
    /// `st_dev` and `st_ino` of the file, as stat returns them.
    package var fileDevice: UInt64
    package var fileInode: UInt64
    /// Bytes consumed (up to the end of the last whole line).
    package var offset: Int64

    package init(vm: String, fileDevice: UInt64, fileInode: UInt64, offset: Int64) {
        self.vm = vm
        self.fileDevice = fileDevice
        self.fileInode = fileInode
        self.offset = offset
    }
}
