import EventLoop
import Glibc
import Testing
import VFIOWatch

/// Starts a monitor on `loop` that posts the uevents whose devpath satisfies `matching`;
/// cancels the test with the kernel's reason when it refuses the socket.
func startedMonitor(on loop: EventLoop, matching: @escaping @Sendable (UEvent) -> Bool) throws -> (LoopBound<UEventMonitor>, Mailbox<UEvent>) {
    let events = Mailbox<UEvent>()
    let monitor = LoopBound(UEventMonitor(loop: loop) { event in
        loop.assertInLoop()
        if matching(event) { events.post(event) }
    }, loop: loop)
    do throws(UEventMonitorError) {
        try loop.runAndWait { () throws(UEventMonitorError) in try monitor.value.start() }
    } catch {
        if [EPERM, EACCES, EPROTONOSUPPORT, EAFNOSUPPORT].contains(error.underlying.errno) {
            try Test.cancel("The kernel refuses uevent sockets here: \(error)")
        }
        throw error
    }
    return (monitor, events)
}

/// Has the kernel broadcast `payload` as a uevent, the way `uevent_net_rcv_skb` relays one
/// sent by a CAP_SYS_ADMIN process: a netlink message to the kernel's uevent socket.
/// Returns the kernel's answer: 0, or a negative errno.
func relayThroughKernel(_ payload: [UInt8]) throws -> Int32 {
    let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 15)
    try #require(fd >= 0)
    defer { close(fd) }

    // struct nlmsghdr: len, type (>= NLMSG_MIN_TYPE 0x10), flags NLM_F_REQUEST|NLM_F_ACK, seq, pid.
    var message: [UInt8] = []
    func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { message += $0 } }
    append(UInt32(16 + payload.count))
    append(UInt16(0x10))
    append(UInt16(1 | 4))
    append(UInt32(1))
    append(UInt32(0))
    message += payload

    var kernel = sockaddr_storage()
    withUnsafeMutableBytes(of: &kernel) { $0.storeBytes(of: UInt16(AF_NETLINK), toByteOffset: 0, as: UInt16.self) }
    let sent = message.withUnsafeBytes { bytes in
        withUnsafePointer(to: &kernel) { address in
            address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, bytes.baseAddress, bytes.count, 0, $0, 12)
            }
        }
    }
    try #require(sent == message.count, "sendto: errno \(errno)")

    // The kernel handles the message inside sendto, so its NLMSG_ERROR ack is queued now.
    var ack = [UInt8](repeating: 0, count: 256)
    let received = recv(fd, &ack, ack.count, Int32(MSG_DONTWAIT))
    try #require(received >= 20, "no ack: errno \(errno)")
    return ack.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: Int32.self) }
}

/// Multicasts `payload` to the uevent group from this process, as a spoofer would (root
/// may; the sender's port id is then ours, not the kernel's 0). Returns errno or 0.
func multicastFromUserspace(_ payload: [UInt8]) throws -> Int32 {
    let fd = socket(AF_NETLINK, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 15)
    try #require(fd >= 0)
    defer { close(fd) }
    var group = sockaddr_storage()
    withUnsafeMutableBytes(of: &group) {
        $0.storeBytes(of: UInt16(AF_NETLINK), toByteOffset: 0, as: UInt16.self)
        $0.storeBytes(of: UInt32(1), toByteOffset: 8, as: UInt32.self)
    }
    let sent = payload.withUnsafeBytes { bytes in
        withUnsafePointer(to: &group) { address in
            address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, bytes.baseAddress, bytes.count, 0, $0, 12)
            }
        }
    }
    return sent == payload.count ? 0 : errno
}

/// Waits for the first posted event, skipping nothing; nil after the bound.
func firstEvent(_ events: Mailbox<UEvent>) -> UEvent? { events.next(within: .seconds(5)) }

@Suite struct UEventMonitorTests {
    @Test func opensTheKernelUEventSocket() throws {
        let queue = EventLoopGroup.shared.next()
        let (monitor, _) = try startedMonitor(on: queue) { _ in false }
        let (before, after) = queue.runAndWait { () -> (Bool, Bool) in
            let running = monitor.value.isRunning
            monitor.value.cancel()
            monitor.value.cancel()
            return (running, monitor.value.isRunning)
        }
        #expect(before && !after)
    }

    @Test func aRecoveryUEventRelayedByTheKernelArrivesParsed() throws {
        let queue = EventLoopGroup.shared.next()
        // A devpath no real device has, so that nothing on the host acts on it.
        let devpath = "/devices/qmp-broker-test/\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let (monitor, events) = try startedMonitor(on: queue) { $0.devpath == devpath }
        defer { queue.runAndWait { monitor.value.cancel() } }

        let payload = kernelUEvent(devpath: devpath, subsystem: "qmp-broker-test",
                                   callerKeys: ["ERROR_EVENT=FAILED_RECOVERY", "DEVICE_ONLINE=0"],
                                   subsystemKeys: ["PCI_SLOT_NAME=0000:00:1c.0"], seqnum: 1)
            .dropLast("SEQNUM=1".utf8.count + 1)  // The kernel appends its own SEQNUM.
        let answer = try relayThroughKernel(Array(payload))
        if answer == -EPERM { try Test.cancel("No CAP_SYS_ADMIN: the kernel will not relay uevents") }
        try #require(answer == 0, "kernel answered \(answer)")

        let event = try #require(firstEvent(events), "no uevent within 5 s")
        #expect(event.action == "change")
        #expect(event.errorEvent == .failedRecovery)
        #expect(event.deviceOnline == false)
        #expect(event.pciAddress == HostAddress("0000:00:1c.0"))
        #expect(event.sequenceNumber != nil)  // Added by the kernel.
    }

    @Test func aUEventNotSentByTheKernelIsIgnored() throws {
        let queue = EventLoopGroup.shared.next()
        let devpath = "/devices/qmp-broker-test/\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let (monitor, events) = try startedMonitor(on: queue) { $0.devpath == devpath }
        defer { queue.runAndWait { monitor.value.cancel() } }

        func payload(_ errorEvent: String) -> [UInt8] {
            Array(kernelUEvent(devpath: devpath, subsystem: "qmp-broker-test", callerKeys: ["ERROR_EVENT=\(errorEvent)"],
                               subsystemKeys: [], seqnum: 1).dropLast("SEQNUM=1".utf8.count + 1))
        }
        // A spoofed success first, then the kernel's failure: both are queued, in this
        // order, before the monitor reads; it must see only the second.
        let spoofed = try multicastFromUserspace(payload("SUCCESSFUL_RECOVERY"))
        if spoofed == EPERM { try Test.cancel("No CAP_NET_ADMIN: cannot multicast a spoofed uevent") }
        try #require(spoofed == 0, "sendto: errno \(spoofed)")
        let answer = try relayThroughKernel(payload("FAILED_RECOVERY"))
        if answer == -EPERM { try Test.cancel("No CAP_SYS_ADMIN: the kernel will not relay uevents") }
        try #require(answer == 0, "kernel answered \(answer)")

        let event = try #require(firstEvent(events), "no uevent within 5 s")
        #expect(event.errorEvent == .failedRecovery)
        queue.runAndWait {}
        #expect(events.pending.isEmpty)
    }

    @Test func theStartErrorIsALogLine() {
        let error = UEventMonitorError(SystemCallError("socket(AF_NETLINK, NETLINK_KOBJECT_UEVENT)", errno: EPERM))
        #expect("\(error)" == "Cannot listen to kernel uevents: socket(AF_NETLINK, NETLINK_KOBJECT_UEVENT): Operation not permitted")
    }

    @Test func aRealKernelUEventOfAPCIDeviceArrives() throws {
        // The kernel's own PCI uevent (pci_uevent adds PCI_SLOT_NAME): a synthetic
        // "change" through the device's uevent file, tagged with a UUID to find it.
        guard let host = firstPCIDevice() else { try Test.cancel("No PCI device in /sys/bus/pci/devices") }
        let path = "/sys/bus/pci/devices/\(host)/uevent"
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { try Test.cancel("Cannot write \(path): errno \(errno)") }
        defer { close(fd) }

        let uuid = "00000000-0000-4000-8000-\(String(UInt64.random(in: 0...0xffff_ffff_ffff), radix: 16).leftPadded(to: 12))"
        let queue = EventLoopGroup.shared.next()
        let (monitor, events) = try startedMonitor(on: queue) { $0.environment["SYNTH_UUID"] == uuid }
        defer { queue.runAndWait { monitor.value.cancel() } }

        let command = Array("change \(uuid)".utf8)
        try #require(write(fd, command, command.count) == command.count, "write \(path): errno \(errno)")
        let event = try #require(firstEvent(events), "no uevent within 5 s")
        #expect(event.action == "change")
        #expect(event.subsystem == "pci")
        #expect(event.pciAddress == host)
        #expect(event.devpath.hasSuffix("/\(host)"))
        #expect(event.errorEvent == nil)
    }
}

private func firstPCIDevice() -> HostAddress? {
    guard let directory = opendir("/sys/bus/pci/devices") else { return nil }
    defer { closedir(directory) }
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if let host = HostAddress(name) { return host }
    }
    return nil
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
