import ErrorEvents
import Logging
@testable import QMPBroker
@testable import QMPWire
import Testing
import VFIOWatch

/// `schemas/` is the source of truth: the code must handle exactly its commands and emit
/// events that validate against it.
@Suite struct SchemaAgreementTests {
    let conformance = SchemaConformance()

    func makeVM() -> VMBroker {
        VMBroker(configuration: VMConfiguration(name: "t", upstreamPath: "/nonexistent", socketPath: "/nonexistent.qmp"),
                 board: BrokerStatusBoard(), logger: Logger(label: "test"))
    }

    @Test func localCommandsAreExactlyTheSchemasCommands() {
        let vm = makeVM()
        #expect(vm.localCommandNames == Set(conformance.catalog.commands.map(\.name)))
    }

    @Test func everyEventTheBrokerEmitsValidates() throws {
        let device = WatchedDevice(
            id: "dev0", host: HostAddress("0000:3b:00.0")!, machine: DeviceErrorMachine(), injectTarget: nil,
            counters: DeviceAERCounters(host: HostAddress("0000:3b:00.0")!, reader: SysfsAERReader(sysfsRoot: "/nonexistent"),
                                        logger: Logger(label: "test")),
            origin: "test")
        var events: [(String, JSON)] = []
        for severity in Severity.allCases {
            for action in PCIErrorEvent.Action.allCases {
                let error = HostError(severity: severity, errors: [AERError.named("DLP", correctable: false)!], count: 3,
                                      source: .eventfd)
                let event = PCIErrorEvent(error, linkError: severity == .fatal, action: action)
                events.append((PCIErrorEvent.name, VFIOEventData.pciError(event, device: device)))
                events.append((PCIErrorEvent.name, VFIOEventData.pciError(event, device: device, note: "a note")))
            }
        }
        for source in ErrorSource.allCases {
            let event = PCIErrorEvent(HostError(severity: .correctable, source: source), linkError: false, action: .none)
            events.append((PCIErrorEvent.name, VFIOEventData.pciError(event, device: device)))
        }
        for origin in LinkResetOrigin.allCases {
            for action in LinkResetEvent.Action.allCases {
                events.append((LinkResetEvent.name, VFIOEventData.linkReset(
                    LinkResetEvent(linkError: true, origin: origin, action: action), device: device)))
                events.append((LinkResetEvent.name, VFIOEventData.linkReset(
                    LinkResetEvent(linkError: true, origin: origin, action: action), device: device, note: "seen late")))
            }
        }
        for reason in LinkErrorClearedEvent.Reason.allCases {
            events.append((LinkErrorClearedEvent.name,
                           VFIOEventData.linkErrorCleared(LinkErrorClearedEvent(reason: reason), device: device)))
        }
        for result in HostRecoveryEvent.Result.allCases {
            events.append((HostRecoveryEvent.name,
                           VFIOEventData.hostRecovery(HostRecoveryEvent(result: result, linkError: true), device: device)))
        }
        events.append(("BROKER_VMM_CONNECTED", .qdict(["vm": .string("t")])))
        events.append(("BROKER_VMM_DISCONNECTED", .qdict(["vm": .string("t")])))
        events.append(("BROKER_LINK_RESET_WATCH", BrokerEventData.linkResetWatch(vm: "t", active: false, reason: "r")))
        events.append(("BROKER_STATE_NOT_DURABLE", BrokerEventData.stateNotDurable(vm: "t", operation: "o", reason: "r")))
        for (name, data) in events {
            let message = BrokerEvent.message(name, data: data)
            #expect(conformance.problems(event: name, data: message["data"]) == [], "\(message)")
        }
        #expect(Set(events.map(\.0)) == Set(conformance.catalog.events.map(\.name)))
    }

    @Test func queryRepliesValidate() throws {
        let info = LocalCommands.brokerInfo([.init(name: "vm1", upstream: "/x", connected: true, clients: 2),
                                             .init(name: "vm2", upstream: "/y", connected: true, clients: 0,
                                                   linkResetWatchReason: "VMM disconnected")])
        let command = try #require(conformance.catalog.commands.first { $0.name == "query-broker" })
        #expect(conformance.problems(type: try #require(command.returns), value: info, path: "query-broker") == [])
        let device = WatchedDevice(
            id: "dev0", host: HostAddress("0000:3b:00.0")!, machine: DeviceErrorMachine(), injectTarget: "rp0",
            counters: DeviceAERCounters(host: HostAddress("0000:3b:00.0")!, reader: SysfsAERReader(sysfsRoot: "/nonexistent"),
                                        logger: Logger(label: "test")),
            origin: "test")
        let devices = try #require(conformance.catalog.commands.first { $0.name == "query-vfio-devices" })
        #expect(conformance.problems(type: try #require(devices.returns), value: .array([VFIOCommands.deviceInfo(device, linkResetWatch: false)]),
                                     path: "query-vfio-devices") == [])
        let pending = WatchedDevice(
            id: "dev1", host: HostAddress("0000:3c:00.0")!, machine: DeviceErrorMachine(), injectTarget: nil,
            counters: DeviceAERCounters(host: HostAddress("0000:3c:00.0")!, reader: SysfsAERReader(sysfsRoot: "/nonexistent"),
                                        logger: Logger(label: "test")),
            origin: "test", triggerMode: .takeover)
        let pendingInfo = VFIOCommands.deviceInfo(pending, linkResetWatch: false, aerTracepoint: true)
        #expect(conformance.problems(type: try #require(devices.returns), value: .array([pendingInfo]), path: "query-vfio-devices") == [])
        #expect(pendingInfo["error-trigger"]?.string == "takeover-pending")
        #expect(pendingInfo["sources"]?.elements.map { $0.string } == ["aer-tracepoint"])
    }

    /// Until the broker holds the trigger, `query-vfio-devices` does not name a source
    /// that is not active: a takeover not yet done is pending; one that failed says why.
    @Test func aTakeoverNotYetDoneIsPending() {
        let device = WatchedDevice(
            id: "dev0", host: HostAddress("0000:3b:00.0")!, machine: DeviceErrorMachine(), injectTarget: nil,
            counters: DeviceAERCounters(host: HostAddress("0000:3b:00.0")!, reader: SysfsAERReader(sysfsRoot: "/nonexistent"),
                                        logger: Logger(label: "test")),
            origin: "test")
        #expect(device.errorTriggerState == "eventfd")
        device.triggerMode = .takeover
        #expect(device.errorTriggerState == "takeover-pending")
        device.triggerStatus = .takeoverFailed(.processGone(pid: 1))
        #expect(device.errorTriggerState == "takeover")
        device.triggerStatus = .released
        #expect(device.errorTriggerState == "takeover-pending")
        #expect(device.sourceNames(aerTracepoint: false) == [])
    }

    @Test func conformanceCatchesWrongData() {
        #expect(!conformance.problems(event: "VFIO_LINK_RESET", data: .object(["device": .string("d")])).isEmpty)
        #expect(!conformance.problems(event: "BROKER_VMM_CONNECTED", data: .object(["vm": .integer(1)])).isEmpty)
        #expect(!conformance.problems(event: "BROKER_VMM_CONNECTED",
                                      data: .object(["vm": .string("a"), "extra": .bool(true)])).isEmpty)
    }
}
