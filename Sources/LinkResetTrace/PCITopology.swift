/// The guest's PCI tree as QMP `query-pci` reports it: which bridges sit above a watched
/// device, and which watched devices a bridge's Secondary Bus Reset takes down.
///
/// Facts of QEMU 7.2 this relies on (checked against the real binary):
/// - Addresses are the bus numbers *as currently programmed*, the same numbers the
///   `pci_cfg_write` trace prints, so a trace address can be looked up directly.
/// - A bridge whose secondary bus number is still 0 (no firmware has run, e.g. `-S`, or
///   its own reset cleared it) is listed without its `devices`: what sits behind it is not
///   reported at all until the guest programs the bus numbers. Such a device is simply
///   absent here (`function(id:)` is nil). A guest cannot reach it either, except through
///   a reset of the bridge itself; QOM still knows it (`qom-list` of the bridge's bus,
///   `/machine/peripheral/<bridge-id>/<bridge-id>`, has a `child[N]` link to
///   `/machine/peripheral/<device-id>`).
/// - Only functions on the root bus (`00:..`) have addresses no guest write can move.
///
/// So the topology must be read again: at attach; after a system reset (bus numbers return
/// to 0); after a guest SBR of a bridge that has bridges below (theirs return to 0); and
/// whenever `needsRefresh(after:)` says a traced write reprogrammed bus numbers. Reads can
/// be coalesced (a guest programs every bridge in one burst).
package struct PCITopology: Sendable {
    package struct Function: Hashable, Sendable {
        package let address: GuestPCIAddress
        /// The qdev `id` (`-device ...,id=`); nil for devices created without one.
        package let qdevID: String?
        /// The PCI class, e.g. 0x0604 for a PCI-to-PCI bridge or PCIe port.
        package let classCode: UInt16
        /// The bus numbers programmed into a bridge; nil for a function that is not a bridge.
        package let bridge: BusRange?

        package var isBridge: Bool { bridge != nil }

        package init(address: GuestPCIAddress, qdevID: String?, classCode: UInt16, bridge: BusRange?) {
            self.address = address
            self.qdevID = qdevID
            self.classCode = classCode
            self.bridge = bridge
        }
    }

    package struct BusRange: Hashable, Sendable {
        package let secondary: UInt8
        package let subordinate: UInt8

        package init(secondary: UInt8, subordinate: UInt8) {
            self.secondary = secondary
            self.subordinate = subordinate
        }
    }

    package struct DecodeError: Error, CustomStringConvertible {
        package let description: String
    }

    /// Every function, depth first in `query-pci` order, so a bridge's descendants follow it.
    package let functions: [Function]
    /// For each function, the index of the bridge above it (nil on a root bus).
    private let parents: [Int?]
    /// For each function, one past the index of its last descendant.
    private let subtreeEnds: [Int]
    private let indexByID: [String: Int]
    private let indicesByAddress: [GuestPCIAddress: [Int]]

    package static let empty = PCITopology(functions: [], parents: [], subtreeEnds: [])

    init(functions: [Function], parents: [Int?], subtreeEnds: [Int]) {
        self.functions = functions
        self.parents = parents
        self.subtreeEnds = subtreeEnds
        var indexByID: [String: Int] = [:]
        var indicesByAddress: [GuestPCIAddress: [Int]] = [:]
        for (index, function) in functions.enumerated() {
            if let id = function.qdevID { indexByID[id] = index }
            indicesByAddress[function.address, default: []].append(index)
        }
        self.indexByID = indexByID
        self.indicesByAddress = indicesByAddress
    }

    package func function(id: String) -> Function? { indexByID[id].map { functions[$0] } }

    /// Normally one function; more only if the guest programmed overlapping bus numbers.
    package func functions(at address: GuestPCIAddress) -> [Function] {
        (indicesByAddress[address] ?? []).map { functions[$0] }
    }

    /// The bridges above a device, nearest first (the root port last). Empty when the device
    /// is on a root bus or not listed.
    package func bridges(above id: String) -> [Function] {
        var chain: [Function] = []
        var current = indexByID[id].flatMap { parents[$0] }
        while let index = current {
            chain.append(functions[index])
            current = parents[index]
        }
        return chain
    }

    /// Everything below the bridge(s) at `address`, at any depth.
    package func functions(below address: GuestPCIAddress) -> [Function] {
        (indicesByAddress[address] ?? []).flatMap { index in functions[(index + 1)..<subtreeEnds[index]] }
    }

    /// The bridges a reset of this bridge's secondary bus also resets (their Bridge Control
    /// and bus numbers return to 0 without any traced write).
    package func bridges(below address: GuestPCIAddress) -> [GuestPCIAddress] {
        functions(below: address).filter(\.isBridge).map(\.address)
    }

    /// The ids among `watched` that a Secondary Bus Reset of the bridge at `address` resets.
    package func devices(below address: GuestPCIAddress, among watched: Set<String>) -> [String] {
        functions(below: address).compactMap { function in
            function.qdevID.flatMap { watched.contains($0) ? $0 : nil }
        }
    }

    /// Whether a traced write (re)programmed bus numbers (primary 0x18, secondary 0x19,
    /// subordinate 0x1a, by any width) of a bridge, so addresses below it may have moved.
    /// Writes to functions known to be endpoints do not count (0x18 is their BAR2); writes
    /// to unknown addresses do, because a bridge that appeared since the last read is unknown.
    package func needsRefresh(after write: PCIConfigAccess) -> Bool {
        guard (0x18...0x1A).contains(write.offset) else { return false }
        return functions(at: write.address).allSatisfy(\.isBridge)
    }
}
