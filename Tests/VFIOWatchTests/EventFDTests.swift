import EventLoop
import Glibc
import Testing
import VFIOWatch

/// Moves `fd` to a high number that no other test will be handed (the kernel gives out
/// the lowest free number), so that "is it closed now?" cannot be fooled by reuse.
func parkedAtHighNumber(_ fd: Int32, slot: Int32) throws -> Int32 {
    var limit = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    let target = Int32(min(Int(limit.rlim_cur) - 1, 1000)) - slot
    try #require(target > 256, "RLIMIT_NOFILE too low")
    try #require(fcntl(target, F_GETFD) == -1, "fd \(target) is in use")
    try #require(dup2(fd, target) == target)
    try #require(fcntl(target, F_SETFD, FD_CLOEXEC) == 0)
    close(fd)
    return target
}

func isOpen(_ fd: Int32) -> Bool { fcntl(fd, F_GETFD) != -1 }

@Suite struct EventFDTests {
    @Test func fiftySignalsDrainAsFifty() throws {
        let fd = try EventFD.makeEventFD()
        defer { close(fd) }
        for _ in 0..<50 { try EventFD.signal(fd) }
        #expect(try EventFD.drain(fd) == 50)
        #expect(try EventFD.drain(fd) == nil)  // Reset to zero: EAGAIN.
    }

    @Test func aRawEightByteWriteIsCountedToo() throws {
        let fd = try EventFD.makeEventFD(initialValue: 2)
        defer { close(fd) }
        var value: UInt64 = 5
        #expect(write(fd, &value, 8) == 8)
        #expect(try EventFD.drain(fd) == 7)
    }

    @Test func anEventFDPassesValidation() throws {
        let fd = try EventFD.makeEventFD()
        defer { close(fd) }
        try EventFD.validate(fd)
        #expect(EventFD.isEventFD(fd))
    }

    @Test func aPipeIsRejected() throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        #expect(throws: EventFDError.notAnEventFD(fd: ends[0])) { try EventFD.validate(ends[0]) }
        #expect(!EventFD.isEventFD(ends[1]))
    }

    @Test func aRegularFileIsRejected() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // Even one named like an eventfd's /proc link.
        try directory.write("anon_inode:[eventfd]", "")
        let fd = open(directory.path + "/anon_inode:[eventfd]", O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(throws: EventFDError.notAnEventFD(fd: fd)) { try EventFD.validate(fd) }
    }

    @Test func otherKindsAreRejected() throws {
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        try #require(null >= 0)
        defer { close(null) }
        #expect(!EventFD.isEventFD(null))

        var pair: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        #expect(!EventFD.isEventFD(pair[0]))

        // Another anon inode: an inotify instance.
        let inotify = inotify_init1(Int32(IN_CLOEXEC))
        try #require(inotify >= 0)
        defer { close(inotify) }
        #expect(throws: EventFDError.notAnEventFD(fd: inotify)) { try EventFD.validate(inotify) }
    }

    @Test func aClosedFDIsRejected() throws {
        let fd = try parkedAtHighNumber(EventFD.makeEventFD(), slot: 1)
        close(fd)
        #expect(throws: EventFDError.notOpen(fd: fd)) { try EventFD.validate(fd) }
        #expect(throws: EventFDError.notOpen(fd: -1)) { try EventFD.validate(-1) }
    }

    @Test func errorTextsAreFitForQMP() {
        #expect("\(EventFDError.notAnEventFD(fd: 7))" == "File descriptor is not an eventfd")
        #expect("\(EventFDError.notOpen(fd: 7))" == "File descriptor is not open")
        #expect("\(EventFDError.cannotInspect(fd: 7, SystemCallError("readlink", errno: ENOENT)))"
            == "Cannot check that the file descriptor is an eventfd: No such file or directory")
    }

    @Test func setNonBlockingMakesDrainReturnInsteadOfBlocking() throws {
        let fd = try EventFD.makeEventFD()
        defer { close(fd) }
        try #require(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0)
        try EventFD.setNonBlocking(fd)
        #expect(fcntl(fd, F_GETFL) & O_NONBLOCK != 0)
        #expect(try EventFD.drain(fd) == nil)
    }
}
