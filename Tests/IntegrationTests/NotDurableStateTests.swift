import BrokerTesting
import Glibc
import QMPBroker
import Testing

/// A state directory that stops taking writes (here a 1 MiB tmpfs filled up under the
/// running broker; a read-only remount is refused while SQLite holds the file open): the flag stays in memory, an event and a log line say it is not
/// durable, and the guest's reset of the flagged link still stops the VM.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs mount (root)"))
struct NotDurableStateTests {
    @Test func aFullStateDirectoryKeepsTheVMProtected() throws {
        let mountPoint = try TemporaryDirectory()
        guard system("mount -t tmpfs -o size=1m,mode=0700 tmpfs '\(mountPoint.path)' 2>/dev/null") == 0 else {
            print("skipped: mount -t tmpfs is not permitted here")
            return
        }
        defer { _ = system("umount -l '\(mountPoint.path)'") }
        let rig = try CLIBrokerRig(stateDirectory: mountPoint.path)
        let client = try rig.start()
        _ = try client.execute("cont")
        #expect(try rig.add(client, id: "dev0", host: rig.sysfs.host, injectAt: "rp0")["return"] != nil)
        _ = system("dd if=/dev/zero of='\(mountPoint.path)/fill' bs=4k 2>/dev/null")
        var space = statvfs()
        statvfs(mountPoint.path, &space)
        #expect(space.f_bavail == 0)

        #expect(try rig.inject(client, "dev0", "fatal")["return"] != nil)
        let warning = try #require(try client.nextEvent("BROKER_STATE_NOT_DURABLE", timeout: 10), "\(rig.log)")
        #expect(warning["data"]?["vm"]?.string == "vm1")
        #expect(warning["data"]?["operation"]?.string == "store link-error flag of dev0")
        #expect(try client.nextEvent("VFIO_PCI_ERROR")?["data"]?["link-error"]?.bool == true)
        #expect(try client.execute("query-vfio-devices")["return"]?[0]?["link-error"]?.bool == true)
        #expect(rig.log.contains("will not survive a restart"), "\(rig.log)")

        // A guest link reset before the firmware numbered rp0's bus races the firmware.
        try rig.waitForFirmwareToNumberDev0(client)
        try rig.guestLinkReset()
        #expect(try client.nextEvent("VFIO_LINK_RESET")?["data"]?["action"]?.string == "stop")
        #expect(try rig.waitUntilPaused(client))
        rig.kill()
    }
}
