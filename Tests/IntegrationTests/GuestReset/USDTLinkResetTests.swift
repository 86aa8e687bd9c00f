import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import Testing

/// Debian's QEMU 7.2 built with the dtrace trace backend only (scripts/build-qemu-dtrace.sh,
/// `make qemu-dtrace`): no log backend, so guest link resets are seen only through the
/// USDT probes (SPEC 11, issue 18).
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
