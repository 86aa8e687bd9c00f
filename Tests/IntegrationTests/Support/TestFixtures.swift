import QMPBroker
import VFIOWatch

/// A real eventfd for tests.
func makeEventFD() -> Int32 { (try? EventFD.makeEventFD()) ?? -1 }

func signal(_ fd: Int32, adding value: UInt64 = 1) { try? EventFD.signal(fd, adding: value) }

extension FakeSysfsTree {
    init(in directory: TemporaryDirectory) { self.init(under: directory.path) }
}

extension TemporaryDirectory {
    /// For stored properties of test suites, which cannot throw; /tmp is always writable here.
    static func forTest() -> TemporaryDirectory {
        do { return try TemporaryDirectory() } catch { fatalError("\(error)") }
    }
}
