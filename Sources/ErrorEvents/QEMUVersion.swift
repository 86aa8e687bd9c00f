/// A QEMU version as `query-version` reports it (`qemu.major`, `.minor`, `.micro`).
package struct QEMUVersion: Hashable, Sendable, Comparable, CustomStringConvertible {
    package let major: Int
    package let minor: Int
    package let micro: Int

    package init(_ major: Int, _ minor: Int, _ micro: Int = 0) {
        self.major = major
        self.minor = minor
        self.micro = micro
    }

    package static func < (lhs: QEMUVersion, rhs: QEMUVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.micro) < (rhs.major, rhs.minor, rhs.micro)
    }

    package var description: String { "\(major).\(minor).\(micro)" }

    /// The first QEMU whose `pcie_aer_msg_alldev` lets correctable errors reach the guest
    /// (SPEC section 9). Before it they are only recorded in the AER status registers.
    package static let deliversCorrectableAERErrors = QEMUVersion(8, 1, 0)
}
