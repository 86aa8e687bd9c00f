@testable import LinkResetTrace
@testable import QMPWire
import Testing

extension GuestReset {
    /// The topology from `query-pci` replies captured from QEMU 7.2.22.
    @Suite struct PCITopologyTests {
        let rp0 = GuestPCIAddress(bus: 0, slot: 0x1C, function: 0)
        let rp1 = GuestPCIAddress(bus: 0, slot: 0x1D, function: 0)
        let usp0 = GuestPCIAddress(bus: 2, slot: 0, function: 0)
        let dsp0 = GuestPCIAddress(bus: 3, slot: 0, function: 0)

        private func topology(_ text: String) throws -> PCITopology {
            try PCITopology(queryPCI: JSON.parse(text))
        }

        @Test func unprogrammedRootPortHidesItsDevice() throws {
            let topology = try topology(CapturedQueryPCI.unprogrammed)
            let port = try #require(topology.function(id: "rp0"))
            #expect(port.address == rp0)
            #expect(port.isBridge)
            #expect(port.bridge == PCITopology.BusRange(secondary: 0, subordinate: 0))
            #expect(port.classCode == 0x0604)
            // QEMU lists nothing behind a bridge whose secondary bus is 0.
            #expect(topology.function(id: "dev0") == nil)
            #expect(topology.bridges(above: "dev0").isEmpty)
            #expect(topology.devices(below: rp0, among: ["dev0"]).isEmpty)
            #expect(topology.functions.map(\.address.description) == ["00:00.0", "00:1c.0", "00:1f.0", "00:1f.2", "00:1f.3"])
            #expect(topology.functions.compactMap(\.qdevID) == ["rp0"])
        }

        @Test func programmedRootPortShowsItsDevice() throws {
            let topology = try topology(CapturedQueryPCI.programmed)
            let device = try #require(topology.function(id: "dev0"))
            #expect(device.address == GuestPCIAddress(bus: 1, slot: 0, function: 0))
            #expect(!device.isBridge)
            #expect(topology.bridges(above: "dev0").map(\.address) == [rp0])
            #expect(topology.bridges(above: "dev0").map(\.qdevID) == ["rp0"])
            #expect(topology.devices(below: rp0, among: ["dev0", "other"]) == ["dev0"])
            #expect(topology.devices(below: rp0, among: ["other"]).isEmpty)
            #expect(topology.bridges(above: "rp0").isEmpty)  // on the root bus
            #expect(topology.bridges(below: rp0).isEmpty)
        }

        @Test func switchChainNearestFirst() throws {
            let topology = try topology(CapturedQueryPCI.switched)
            let chain = topology.bridges(above: "dev1")
            #expect(chain.map(\.qdevID) == ["dsp0", "usp0", "rp1"])
            #expect(chain.map(\.address) == [dsp0, usp0, rp1])
            #expect(chain.map(\.bridge) == [
                PCITopology.BusRange(secondary: 4, subordinate: 4),
                PCITopology.BusRange(secondary: 3, subordinate: 4),
                PCITopology.BusRange(secondary: 2, subordinate: 4),
            ])
            #expect(topology.function(id: "dev1")?.address == GuestPCIAddress(bus: 4, slot: 0, function: 0))
            let watched: Set = ["dev0", "dev1"]
            #expect(topology.devices(below: rp1, among: watched) == ["dev1"])
            #expect(topology.devices(below: usp0, among: watched) == ["dev1"])
            #expect(topology.devices(below: dsp0, among: watched) == ["dev1"])
            #expect(topology.devices(below: rp0, among: watched) == ["dev0"])
            // A reset of rp1's bus also resets the switch's ports.
            #expect(topology.bridges(below: rp1) == [usp0, dsp0])
            #expect(topology.functions(below: rp1).compactMap(\.qdevID) == ["usp0", "dsp0", "dev1"])
            // Not a bridge, nothing below; unknown address, nothing below.
            #expect(topology.devices(below: GuestPCIAddress(bus: 4, slot: 0, function: 0), among: watched).isEmpty)
            #expect(topology.devices(below: GuestPCIAddress(bus: 9, slot: 0, function: 0), among: watched).isEmpty)
        }

        @Test func afterAnSBRTheSwitchBelowIsGoneUntilReprogrammed() throws {
            let topology = try topology(CapturedQueryPCI.switchedAfterSecondaryBusReset)
            #expect(topology.function(id: "usp0")?.bridge == PCITopology.BusRange(secondary: 0, subordinate: 0))
            #expect(topology.function(id: "dsp0") == nil)
            #expect(topology.function(id: "dev1") == nil)
            #expect(topology.bridges(above: "dev0").map(\.qdevID) == ["rp0"])
        }

        @Test func busNumberWritesAskForARefresh() throws {
            let topology = try topology(CapturedQueryPCI.switched)
            func write(_ address: GuestPCIAddress, _ offset: UInt16, _ value: UInt32 = 0) -> PCIConfigAccess {
                PCIConfigAccess(model: "m", address: address, offset: offset, value: value)
            }
            #expect(topology.needsRefresh(after: write(rp0, 0x18, 0x10100)))  // dword primary/secondary/subordinate
            #expect(topology.needsRefresh(after: write(usp0, 0x19, 3)))      // byte secondary
            #expect(topology.needsRefresh(after: write(dsp0, 0x1A, 4)))      // byte subordinate
            #expect(!topology.needsRefresh(after: write(rp0, 0x1B, 0)))      // secondary latency timer
            #expect(!topology.needsRefresh(after: write(rp0, 0x3E, 0x40)))
            // dev1 is an endpoint: 0x18 is its BAR2.
            #expect(!topology.needsRefresh(after: write(GuestPCIAddress(bus: 4, slot: 0, function: 0), 0x18, 0xFFFF_FFFF)))
            // An address the snapshot does not know may be a bridge that appeared since.
            #expect(topology.needsRefresh(after: write(GuestPCIAddress(bus: 5, slot: 0, function: 0), 0x18)))
            // The captured trace line that programmed the switch's upstream port.
            guard case .configWrite(let captured)? = QEMUTraceLine.parse(CapturedTraceLines.switchBusNumbers)?.event else {
                Issue.record("capture did not parse")
                return
            }
            #expect(topology.needsRefresh(after: captured))
        }

        @Test func acceptsTheReturnArrayAlone() throws {
            let reply = try JSON.parse(CapturedQueryPCI.programmed)
            let fromArray = try PCITopology(queryPCI: try #require(reply["return"]))
            #expect(fromArray.functions == (try topology(CapturedQueryPCI.programmed)).functions)
        }

        @Test func malformedRepliesThrow() {
            let malformed = [
                #"{"return": {}}"#,
                #"{"error": {"class": "GenericError", "desc": "x"}}"#,
                #"[{"bus": 0}]"#,
                #"[{"bus": 0, "devices": [{"bus": 0, "slot": 32, "function": 0, "qdev_id": ""}]}]"#,
                #"[{"bus": 0, "devices": [{"bus": 0, "slot": 1, "qdev_id": ""}]}]"#,
                #"[{"bus": 0, "devices": [{"bus": 0, "slot": 1, "function": 0, "qdev_id": "", "pci_bridge": {}}]}]"#,
            ]
            for text in malformed {
                #expect(throws: PCITopology.DecodeError.self, "\(text)") { try topology(text) }
            }
            #expect(PCITopology.empty.functions.isEmpty)
            #expect((try? topology("[]"))?.functions.isEmpty == true)
        }
    }
}
