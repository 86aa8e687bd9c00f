import BrokerState
import BrokerTesting
import Glibc
import QMPBroker
import Testing

/// Devices that survive a restart as added, inject-at checked on the way in, and the
/// trace-log catch-up, with the real CLI killed by SIGKILL.
@Suite(.serialized) struct DurableRegistryTests {
    /// On every QEMU build: the restarted broker finds QEMU still writing into its file and
    /// does not point QEMU at it again (QEMU 10 would truncate it, and the reset with it).
    @Test(arguments: QEMUBuild.all)
    func aDeviceAddedAtRuntimeComesBackAsAddedAndAResetDuringTheGapStopsTheVM(_ build: QEMUBuild) throws {
        let rig = try CLIBrokerRig(build: build)
        var client = try rig.start()
        _ = try client.execute("cont")
        #expect(try rig.add(client, id: "dev0", host: rig.sysfs.host, policy: "forward", injectAt: "rp0")["return"] != nil)
        #expect(try rig.inject(client, "dev0", "fatal")["return"] != nil)
        #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
        rig.kill()
        #expect(client.waitForClose(timeout: 5))

        // The guest resets the flagged link while no broker runs; QEMU still logs it.
        try rig.guestLinkReset()
        client = try rig.start()
        #expect(try rig.waitUntilPaused(client), "\(rig.log)")
        let device = try #require(try client.execute("query-vfio-devices")["return"]?[0])
        #expect(device["id"]?.string == "dev0")
        #expect(device["policy"]?.string == "forward")
        #expect(device["inject-at"]?.string == "rp0")
        #expect(device["link-error"]?.bool == true)
        #expect(device["sources"]?.elements.contains { $0.string?.hasPrefix("eventfd") == true } == false)
        #expect(rig.log.contains("guest link reset seen late"), "\(rig.log)")
        #expect(rig.log.contains("send them again with vfio-eventfd-add"))
    }

    @Test func aConfigEntryWinsOverTheStoredDeviceOfTheSameID() throws {
        let rig = try CLIBrokerRig()
        var client = try rig.start()
        #expect(try rig.add(client, id: "dev0", host: rig.sysfs.host, policy: "stop", injectAt: "rp0")["return"] != nil)
        rig.kill()
        rig.directory.write("broker.toml", rig.directory.read("broker.toml") + """

            [[vm.device]]
            id = "dev0"
            host = "\(rig.sysfs.host)"
            policy = "report"
            """)
        client = try rig.start()
        let devices = try #require(try client.execute("query-vfio-devices")["return"]?.elements)
        #expect(devices.count == 1)
        #expect(devices.first?["policy"]?.string == "report")
        #expect(devices.first?["inject-at"]?.string == "dev0")
        #expect(rig.log.contains("the config entry wins over the stored device"))
    }

    /// Item 9: nothing may be pasted into the broker's own HMP command line.
    @Test func aBadInjectAtIsRefusedByTheCommandAndByTheConfig() throws {
        let rig = try CLIBrokerRig()
        let client = try rig.start()
        let reply = try rig.add(client, id: "dev0", host: rig.sysfs.host, injectAt: "nic0 0x10 0 0 0 0")
        #expect(reply["error"]?["desc"]?.string == "Parameter 'inject-at' expects an identifier", "\(reply)")
        #expect(try client.execute("query-vfio-devices")["return"]?.elements.isEmpty == true)
        rig.kill()

        // A blank in it: refused by the config reader.
        try expectConfigRefused(rig, named: "bad", injectAt: "rp0 0x10", saying: "`inject-at` must be one QEMU device id, got \"rp0 0x10\"")
        // No blank, but still not an id: refused by the startup check of QEMU's id rules.
        try expectConfigRefused(rig, named: "odd", injectAt: "rp0;x", saying: "inject-at 'rp0;x' is not a QEMU device id")
    }

    /// The fault test: SIGKILL at random points while errors flow, devices
    /// added at runtime; after every restart every acknowledged flag is back.
    @Test func twentySIGKILLsLoseNoFlagAndLeaveTheFileIntact() throws {
        let rig = try CLIBrokerRig()
        var client = try rig.start()
        _ = try client.execute("cont")
        #expect(try rig.add(client, id: "dev0", host: rig.sysfs.host, injectAt: "rp0")["return"] != nil)
        var generator = SystemRandomNumberGenerator()
        var flagged: [String] = []
        for round in 0..<20 {
            let id = "run\(round)"
            let host = "0000:\(String(0x40 + round, radix: 16)):00.0"
            #expect(try rig.add(client, id: id, host: host, policy: round % 2 == 0 ? "report" : "forward")["return"] != nil)
            if round % 3 == 0 {
                #expect(try rig.inject(client, id, "fatal")["return"] != nil)
                flagged.append(id)
            }
            // A burst nobody waits for, cut off at a random point.
            for index in 0..<50 {
                let line = #"{"execute": "x-vfio-inject-error", "arguments": {"device": "dev0", "severity": "\#(index % 2 == 0 ? "non-fatal" : "correctable")"}}"#
                try client.send(line + "\n")
            }
            usleep(UInt32.random(in: 0..<20_000, using: &generator))
            rig.kill()
            client = try rig.start()
            let devices = try #require(try client.execute("query-vfio-devices")["return"]?.elements, "\(rig.log)")
            let flags = Dictionary(uniqueKeysWithValues: devices.compactMap { device in
                device["id"]?.string.map { ($0, device["link-error"]?.bool ?? false) }
            })
            #expect(flags.count == round + 2, "round \(round): \(flags.keys.sorted())")
            for id in flagged { #expect(flags[id] == true, "round \(round): \(id)") }
            #expect(flags.filter(\.value).count == flagged.count)
        }
        // The VM is still protected: dev0's flag, then a guest reset of its link.
        #expect(try rig.inject(client, "dev0", "fatal")["return"] != nil)
        #expect(try client.nextEvent("VFIO_PCI_ERROR", timeout: 10) != nil)
        try rig.guestLinkReset()
        #expect(try rig.waitUntilPaused(client), "\(rig.log)")
        rig.kill()
        let store = try StateStore(path: "\(rig.stateDirectory)/qmp-broker.sqlite")
        #expect(try store.integrityCheck() == "ok")
        print("20 SIGKILLs: \(flagged.count) flags kept of \(flagged.count), "
            + "\(try store.historyRecords(HistoryQuery(vm: "vm1", kinds: [.error], limit: 100_000)).count) of 1,000 burst errors recorded before the kills")
    }

    /// The rig's config plus a device with this `inject-at`: `run` exits non-zero, saying so.
    private func expectConfigRefused(_ rig: CLIBrokerRig, named name: String, injectAt: String, saying message: String) throws {
        rig.directory.write("\(name).toml", rig.directory.read("broker.toml") + """

            [[vm.device]]
            id = "dev0"
            host = "\(rig.sysfs.host)"
            inject-at = "\(injectAt)"
            """)
        let process = try ChildProcess([BrokerProcess.binary, "run", "--config", rig.directory.file("\(name).toml")],
                                       outputPath: rig.directory.file("\(name).log"))
        let status = process.wait(timeout: 10)
        #expect(status != nil && status != 0)
        #expect(rig.directory.read("\(name).log").contains(message), "\(rig.directory.read("\(name).log"))")
    }
}
