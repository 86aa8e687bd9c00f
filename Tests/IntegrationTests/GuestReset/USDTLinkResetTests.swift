import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing
import USDTProbes

/// Debian's QEMU 7.2 built with the dtrace trace backend only (scripts/build-qemu-dtrace.sh,
/// `make qemu-dtrace`): no log backend, so guest link resets are seen only through the
/// USDT probes (SPEC 11).
enum DtraceQEMU {
    /// The cached wrapper, newest source version first; nil when it was never built.
    static let binary: String? = {
        let cache = ProcessInfoEnvironment.value("QMP_BROKER_CACHE") ?? "/var/cache/qmp-broker"
        guard let directory = opendir(cache) else { return nil }
        defer { closedir(directory) }
        var found: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasPrefix("qemu-dtrace-"), !name.hasSuffix(".part"), name != "qemu-dtrace-build" else { continue }
            let wrapper = "\(cache)/\(name)/qemu-system-x86_64"
            if access(wrapper, X_OK) == 0 { found.append(wrapper) }
        }
        return found.sorted().last
    }()

    static var build: QEMUBuild { QEMUBuild(name: "7.2 dtrace", binary: binary!) }

    static let missing = "no dtrace-only QEMU in the cache: run `make qemu-dtrace` (scripts/build-qemu-dtrace.sh)"
}

enum ProcessInfoEnvironment {
    static func value(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}

extension GuestReset {
    @Suite(.serialized, .enabled(if: DtraceQEMU.binary != nil, Comment(rawValue: DtraceQEMU.missing)))
    struct USDTLinkResetTests {
        private func rig(checkMilliseconds: Int? = nil) throws -> RecoveryRig {
            try RecoveryRig(build: DtraceQEMU.build, checkMilliseconds: checkMilliseconds ?? 2000)
        }

        private func source(_ rig: RecoveryRig) throws -> (broker: String?, device: String?) {
            let vm = try rig.client.execute("query-broker")["return"]?["vms"]?[0]
            return (vm?["link-reset-source"]?.string, try rig.device()?["link-reset-source"]?.string)
        }

        @Test func aFlaggedSBRStopsTheVMThroughTheProbes() throws {
            let rig = try rig()
            let source = try source(rig)
            let broker = try rig.client.execute("query-broker")
            #expect(source.broker == "usdt" && source.device == "usdt", "\(broker)")
            rig.hostFatalError()
            #expect(try rig.client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
            try rig.guestLinkReset()
            let reset = try #require(try rig.client.nextEvent("VFIO_LINK_RESET"))
            #expect(reset["data"]?["action"]?.string == "stop")
            #expect(reset["data"]?["origin"]?.string == "guest-link-reset")
            #expect(try rig.client.nextEvent("STOP") != nil)
            #expect(try rig.status() == "paused")
        }

        @Test func anUnflaggedSBRAndASystemResetDoNotStop() throws {
            let rig = try rig()
            try rig.guestLinkReset()
            #expect(try rig.client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "none")
            rig.hostFatalError()
            _ = try rig.client.nextEvent("VFIO_PCI_ERROR")
            _ = try rig.client.execute("system_reset")
            #expect(try rig.client.nextEvent("RESET") != nil)
            try rig.qtest.command("outb 0xcf9 0x6")  // the guest's own reboot
            #expect(try rig.client.nextEvent("RESET") != nil)
            #expect(try rig.client.nextEvent("VFIO_LINK_RESET", timeout: 0.5) == nil)
            #expect(try rig.client.nextEvent("STOP", timeout: 0.1) == nil)
            #expect(try rig.status() == "running")
        }

        /// Past several canary checks, with guest config traffic between them.
        @Test func aFlaggedSBRLongAfterAttachStillStops() throws {
            let rig = try rig(checkMilliseconds: 200)
            rig.hostFatalError()
            _ = try rig.client.nextEvent("VFIO_PCI_ERROR")
            for _ in 0..<5 {
                for _ in 0..<20 {
                    try rig.qtest.ecamWrite(bus: 0, slot: RecoveryRig.rootPortSlot, function: 0, offset: 0x3e, value: 0x2, width: 2)
                }
                usleep(250_000)
            }
            #expect(try rig.client.execute("query-broker")["return"]?["vms"]?[0]?["link-reset-watch"]?.bool == true)
            try rig.guestLinkReset()
            #expect(try rig.client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "stop")
            #expect(try rig.client.nextEvent("STOP") != nil)
        }

        /// Something outside the broker puts QEMU's own instructions back over the probes'
        /// breakpoints, as a debugger restoring the bytes it saved would: no probe fires any
        /// more, so guest resets go unseen. The canary must notice, and re-arming must put
        /// the breakpoints back so that a flagged SBR stops the VM again.
        @Test func probesRemovedFromQEMUsTextAreNoticedAndReArmed() throws {
            let rig = try rig(checkMilliseconds: 1000)
            rig.hostFatalError()
            #expect(try rig.client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
            let removed = try QEMUText.removeProbeBreakpoints(pid: rig.qemu.process.pid)
            #expect(removed > 0)
            let broken = Deadline.now()
            let inactive = try #require(try rig.client.nextWatchEvent(active: false, timeout: 10))
            let noticed = Deadline.now() - broken
            let vm = try rig.client.execute("query-broker")["return"]?["vms"]?[0]
            let deviceSource = try rig.device()?["link-reset-source"]?.string
            // Re-armed and proven by the next canary (1 s) before these replies, the watch is
            // back, and its event came first: then both say so, else both say it is broken.
            let restored = rig.client.events.contains {
                $0["event"]?.string == "BROKER_LINK_RESET_WATCH" && $0["data"]?["active"]?.bool == true
            }
            #expect(vm?["link-reset-watch"]?.bool == false || restored, "\(vm.map { "\($0)" } ?? "")")
            #expect(deviceSource == (restored ? "usdt" : "none"))
            #expect(inactive["data"]?["reason"]?.string?.contains("canary") == true, "\(inactive)")
            _ = try #require(try rig.client.nextWatchEvent(active: true, timeout: 10))
            let rearmed = Deadline.now() - broken
            print("USDT canary: breakage noticed after \(Int(noticed * 1000)) ms, watch intact again after \(Int(rearmed * 1000)) ms (check every \(rig.checkMilliseconds) ms)")
            #expect(try QEMUText.probeBreakpointCount(pid: rig.qemu.process.pid) == removed)
            let source = try source(rig)
            #expect(source.broker == "usdt" && source.device == "usdt")
            try rig.guestLinkReset()
            let reset = try #require(try rig.client.nextEvent("VFIO_LINK_RESET"))
            #expect(reset["data"]?["action"]?.string == "stop")
            #expect(try rig.client.nextEvent("STOP") != nil)
        }

        @Test func aBrokerKilledAndRestartedKeepsWatching() throws {
            let directory = try TemporaryDirectory()
            let qtestPath = directory.file("qtest.sock")
            let qemu = try QEMUInstance(in: directory, build: DtraceQEMU.build) {
                $0.qtestSocket = qtestPath
                $0.extra += ["-qtest-log", "none"]
            }
            let qtest = try QTestConnection(path: qtestPath)
            try qtest.enableECAM()
            let sysfs = FakeSysfsTree(in: directory)
            directory.writeBrokerConfig(qemu: qemu, sysfs: sysfs)
            let arguments = ["run", "--config", directory.file("broker.toml")]
            let socket = directory.file("vm1.qmp")
            var broker: BrokerProcess? = try BrokerProcess(arguments: arguments, logPath: directory.file("broker.log"))
            var client = try QMPClient(path: socket)
            try client.negotiate()
            _ = try client.execute("cont")
            do {
                try client.waitForLinkResetWatch()
            } catch {
                Issue.record("\(error): \(directory.read("broker.log"))")
                throw error
            }
            let fd = try hostFatalErrorThroughEventFD(client, sysfs: sysfs)
            defer { close(fd) }
            #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
            broker?.kill()
            broker = nil
            #expect(client.waitForClose(timeout: 5))

            broker = try BrokerProcess(arguments: arguments, logPath: directory.file("broker.log"))
            client = try QMPClient(path: socket)
            try client.negotiate()
            try client.waitForLinkResetWatch()
            let vm = try client.execute("query-broker")["return"]?["vms"]?[0]
            #expect(vm?["link-reset-source"]?.string == "usdt", "\(directory.read("broker.log"))")
            try qtest.secondaryBusReset(slot: 0x1C)
            #expect(try client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "stop", "\(directory.read("broker.log"))")
            #expect(try client.nextEvent("STOP") != nil)
            _ = (qemu, broker)
        }
    }
}

extension QMPClient {
    /// The next `BROKER_LINK_RESET_WATCH` saying `active`, past any saying otherwise.
    func nextWatchEvent(active: Bool, timeout: Double) throws -> JSON? {
        let deadline = Deadline(after: timeout)
        while !deadline.passed {
            guard let event = try nextEvent("BROKER_LINK_RESET_WATCH", timeout: deadline.remaining) else { return nil }
            if event["data"]?["active"]?.bool == active { return event }
        }
        return nil
    }
}

/// QEMU's probe sites in its memory, written through /proc/PID/mem as a debugger does.
enum QEMUText {
    static let breakpoint: UInt8 = 0xCC
    /// What <sys/sdt.h> puts at a probe site on x86-64.
    static let nop: UInt8 = 0x90

    /// Puts the `nop` back at every probe site of the broker's that holds a uprobe
    /// breakpoint; how many it changed.
    static func removeProbeBreakpoints(pid: pid_t) throws -> Int {
        try withSites(pid: pid) { mem, address in
            guard try byte(mem, at: address) == breakpoint else { return false }
            var byte = nop
            guard pwrite(mem, &byte, 1, off_t(address)) == 1 else { throw QMPClient.Failure("pwrite: \(errno)") }
            return true
        }
    }

    static func probeBreakpointCount(pid: pid_t) throws -> Int {
        try withSites(pid: pid) { mem, address in try byte(mem, at: address) == breakpoint }
    }

    private static func byte(_ mem: Int32, at address: UInt64) throws -> UInt8 {
        var byte: UInt8 = 0
        guard pread(mem, &byte, 1, off_t(address)) == 1 else { throw QMPClient.Failure("pread: \(errno)") }
        return byte
    }

    /// Calls `body` with /proc/PID/mem and the address of each site; counts the trues.
    private static func withSites(pid: pid_t, _ body: (Int32, UInt64) throws -> Bool) throws -> Int {
        let binary = try readLink("/proc/\(pid)/exe")
        let image = try ELFImage(bytes: try readFile(binary))
        let sites = try QEMUProbeSites(image: image).sites.values.joined()
        // The binary's mappings: start, end and file offset (`/proc/PID/maps`).
        let mappings: [(start: UInt64, end: UInt64, offset: UInt64)] = try readFile("/proc/\(pid)/maps")
            .split(separator: UInt8(ascii: "\n")).compactMap { line in
                let fields = String(decoding: line, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count >= 6, fields[5] == binary else { return nil }
                let range = fields[0].split(separator: "-")
                guard let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
                      let offset = UInt64(fields[2], radix: 16) else { return nil }
                return (start, end, offset)
            }
        let mem = open("/proc/\(pid)/mem", O_RDWR)
        guard mem >= 0 else { throw QMPClient.Failure("open /proc/\(pid)/mem: \(errno)") }
        defer { close(mem) }
        var count = 0
        for site in sites {
            guard let mapping = mappings.first(where: {
                site.fileOffset >= $0.offset && site.fileOffset - $0.offset < $0.end - $0.start
            }) else { continue }
            if try body(mem, mapping.start + site.fileOffset - mapping.offset) { count += 1 }
        }
        return count
    }

    private static func readLink(_ path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { throw QMPClient.Failure("readlink \(path): \(errno)") }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw QMPClient.Failure("open \(path): \(errno)") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { return bytes }
            bytes += chunk[..<count]
        }
    }
}

extension GuestReset {
    /// Debian's own QEMU has no USDT notes: the trace log watches, and the broker says why.
    @Suite struct LinkResetSourceOnStockQEMUTests {
        @Test func theStockBinaryIsWatchedThroughTheTraceLog() throws {
            let rig = try RecoveryRig()
            let vm = try #require(try rig.client.execute("query-broker")["return"]?["vms"]?[0])
            #expect(vm["link-reset-source"]?.string == "trace-log")
            #expect(vm["link-reset-usdt-unavailable"]?.string?.contains("no USDT probes") == true, "\(vm)")
            #expect(try rig.device()?["link-reset-source"]?.string == "trace-log")
        }
    }
}
