import BrokerTesting
import Glibc
import QMPBroker
import QMPWire
import VFIOWatch

/// End to end with the real QEMU: host error or guest link reset → QEMU's `STOP` event at
/// a client. QEMU's vCPU pause is inside these figures; the scripted-VMM rows leave it out.
extension QEMUBench {
    struct StopFigures {
        var errorEvent: [Double] = []
        var eventFDStop: [Double] = []
        var sbrStop: [Double] = []
        /// The broker's VFIO_LINK_RESET to QEMU's STOP, from the two events' timestamps.
        var linkResetToStop: [Double] = []
        var qtestRoundTrip: [Double] = []
    }

    func stopFigures(trials: Int) throws -> StopFigures {
        var figures = StopFigures()
        let watcher = try QMPClient(path: vm.socketPath)
        try watcher.negotiate()
        _ = try watcher.execute("vfio-device-add", arguments: .object([
            "id": .string("dev0"), "host": .string("0000:3b:00.0"), "policy": .string("report"),
        ]))
        let eventFD = try EventFD.makeEventFD()
        defer { close(eventFD) }
        _ = try watcher.execute("vfio-eventfd-add", arguments: .object(["device": .string("dev0"), "severity": .string("non-fatal")]),
                                fds: [dup(eventFD)])
        for _ in 0..<trials {
            figures.errorEvent.append(try Clock.microseconds {
                try EventFD.signal(eventFD)
                guard try watcher.nextEvent("VFIO_PCI_ERROR", timeout: 5) != nil else { throw QMPClient.Failure("lost event") }
            })
        }

        _ = try watcher.execute("vfio-device-set-policy", arguments: .object(["device": .string("dev0"), "policy": .string("stop")]))
        let fatalFD = try EventFD.makeEventFD()
        defer { close(fatalFD) }
        _ = try watcher.execute("vfio-eventfd-add", arguments: .object(["device": .string("dev0"), "severity": .string("fatal")]),
                                fds: [dup(fatalFD)])
        for _ in 0..<trials {
            _ = try watcher.execute("cont")
            _ = try watcher.nextEvent("RESUME", timeout: 5)
            _ = try watcher.execute("vfio-link-error-clear", arguments: .object(["device": .string("dev0")]))
            figures.eventFDStop.append(try Clock.microseconds {
                try EventFD.signal(fatalFD)
                guard try watcher.nextEvent("STOP", timeout: 5) != nil else { throw QMPClient.Failure("no STOP") }
            })
        }

        let qtest = try QTestConnection(path: qtestSocket)
        try qtest.enableECAM()
        _ = try watcher.execute("vfio-device-set-policy", arguments: .object(["device": .string("dev0"), "policy": .string("forward")]))
        _ = try watcher.execute("cont")
        _ = try watcher.nextEvent("RESUME", timeout: 5)
        try watcher.waitForLinkResetWatch()
        figures.qtestRoundTrip = try (0..<trials).map { _ in try Clock.microseconds { _ = try qtest.command("inb 0x80") } }
        for _ in 0..<trials {
            // Resuming a VM stopped for the guest's link reset clears the flag: flag it each time.
            try EventFD.signal(fatalFD)
            _ = try watcher.nextEvent("VFIO_PCI_ERROR", timeout: 5)
            var reset: JSON?
            var stopped: JSON?
            figures.sbrStop.append(try Clock.microseconds {
                try qtest.ecamWrite(bus: 0, slot: 0x1C, function: 0, offset: 0x3E, value: 0x40, width: 2)
                reset = try watcher.nextEvent("VFIO_LINK_RESET", timeout: 5)
                stopped = try watcher.nextEvent("STOP", timeout: 5)
                guard stopped != nil else { throw QMPClient.Failure("no STOP after SBR") }
            })
            figures.linkResetToStop.append(Double((stopped?.eventMicroseconds ?? 0) - (reset?.eventMicroseconds ?? 0)))
            try qtest.ecamWrite(bus: 0, slot: 0x1C, function: 0, offset: 0x3E, value: 0, width: 2)
            _ = try watcher.execute("cont")
            _ = try watcher.nextEvent("RESUME", timeout: 5)
        }
        return figures
    }
}
