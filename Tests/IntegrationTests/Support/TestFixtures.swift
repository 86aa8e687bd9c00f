import BrokerTesting
import Dispatch
import Foundation
import Glibc
import QMPBroker
import QMPWire
import VFIOWatch

/// A real eventfd for tests.
func makeEventFD() -> Int32 { (try? EventFD.makeEventFD()) ?? -1 }

func signal(_ fd: Int32, adding value: UInt64 = 1) { try? EventFD.signal(fd, adding: value) }

extension FakeSysfsTree {
    init(in directory: TemporaryDirectory) { self.init(under: directory.path) }
}

/// A fatal DLP on dev0, the way the CLI tests make one: a fatal eventfd handed to the
/// broker with SCM_RIGHTS, the counter moved, the eventfd signalled. Returns the eventfd
/// (the caller closes it).
func hostFatalErrorThroughEventFD(_ client: QMPClient, sysfs: FakeSysfsTree) throws -> Int32 {
    let fd = makeEventFD()
    let copy = dup(fd)
    let reply = try client.execute("vfio-eventfd-add", arguments: .object([
        "device": .string("dev0"), "severity": .string("fatal")]), fds: [copy])
    close(copy)
    guard reply["return"] != nil else { throw QMPClient.Failure("vfio-eventfd-add: \(reply)") }
    sysfs.set(correctable: [:], nonFatal: [:], fatal: ["DLP": 1])
    signal(fd)
    return fd
}

extension TemporaryDirectory {
    /// `broker.toml` for the CLI: one VM (`vm1`) in front of `qemu`, with `dev0` watched
    /// under `policy`, and the state file under this directory.
    func writeBrokerConfig(qemu: QEMUInstance, sysfs: FakeSysfsTree, policy: String = "forward") {
        write("broker.toml", """
            socket-dir = "\(path)"
            state-dir = "\(path)/state"
            sysfs-root = "\(sysfs.root)"

            [[vm]]
            name = "vm1"
            qmp = "\(qemu.qmpSocket)"

            [[vm.device]]
            id = "dev0"
            host = "\(sysfs.host)"
            policy = "\(policy)"
            """)
    }

    /// For stored properties of test suites, which cannot throw; /tmp is always writable here.
    static func forTest() -> TemporaryDirectory {
        do { return try TemporaryDirectory() } catch { fatalError("\(error)") }
    }
}

/// Runs a blocking client loop on a thread of its own. Not on Dispatch's global queues:
/// on Linux their pool does not notice threads blocked in poll(2), so a few dozen of them
/// starve whatever else that pool runs (the state store's history writer among it).
func runOnOwnThread(_ group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
    group.enter()
    let thread = Thread {
        body()
        group.leave()
    }
    thread.start()
}
