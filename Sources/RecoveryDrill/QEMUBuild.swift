import Glibc

/// A QEMU binary the integration tests run against. Debian 12's QEMU 7.2 is the system's;
/// Debian stable's QEMU 10.0 comes from bookworm-backports, unpacked outside the clone by
/// `scripts/fetch-qemu10.sh` (run by `make test`), and behaves differently where it matters
/// to the broker: `logfile` truncates the file it reopens, and correctable errors reach
/// the guest.
package struct QEMUBuild: Sendable, CustomStringConvertible, Hashable {
    package let name: String
    package let binary: String

    package var description: String { "QEMU \(name)" }

    package static let debian7_2 = QEMUBuild(name: "7.2", binary: "qemu-system-x86_64")

    /// The wrapper `scripts/fetch-qemu10.sh` makes, under `QMP_BROKER_CACHE`.
    package static let debian10_0 = QEMUBuild(name: "10.0", binary: "\(cacheRoot)/qemu-10.0.2/qemu-system-x86_64")

    /// Every build the tests of tracing, guest resets and error forwarding must pass on. A
    /// missing QEMU 10 fails those tests (it is not skipped): `make test` fetches it.
    package static let all: [QEMUBuild] = [.debian7_2, .debian10_0]

    /// `QMP_BROKER_CACHE`, or `/var/cache/qmp-broker`: outside the clone, kept across CI runs.
    package static var cacheRoot: String {
        getenv("QMP_BROKER_CACHE").map { String(cString: $0) } ?? "/var/cache/qmp-broker"
    }

    package init(name: String, binary: String) {
        self.name = name
        self.binary = binary
    }
}
