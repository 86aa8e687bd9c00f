import ArgumentParser
import Glibc
import QMPBroker
import QMPWire

/// `qmp-broker events VM|SOCKET`: print events as they arrive (virsh qemu-monitor-event style).
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print QMP events from a VM's broker socket (or any QMP socket) as they arrive.",
        discussion: "Exits 0 after --count events or --timeout, and 1 when the broker (or VMM) closes the connection.")

    @OptionGroup var monitor: MonitorTarget

    @Flag(help: "Print each event as one line of JSON, exactly as received.")
    var json = false

    @Flag(help: "Print each event as indented JSON.")
    var pretty = false

    @Option(name: .customLong("event"), help: "Only events with this name (repeatable).")
    var names: [String] = []

    @Option(help: "Stop after this many events (default: run until the socket closes).")
    var count: Int?

    @Option(help: "Stop after this many seconds.")
    var timeout: Double?

    func run() throws {
        let client: QMPClient
        do {
            client = try QMPClient(path: monitor.socketPath)
            try client.negotiate()
        } catch {
            throw ValidationError("Cannot connect to \(monitor.socketPath): \(error)")
        }
        let deadline = timeout.map { Deadline(after: $0) }
        var printed = 0
        while count.map({ printed < $0 }) ?? true {
            if deadline?.passed == true { return }
            let event: JSON?
            do {
                event = try client.nextEvent(timeout: deadline.map { max(0, $0.remaining) } ?? 3600)
            } catch {
                Self.standardError("the connection to \(monitor.socketPath) was closed")
                throw ExitCode(1)
            }
            guard let event else { continue }
            if !names.isEmpty && !names.contains(event["event"]?.string ?? "") { continue }
            print(pretty ? event.prettyString() : json ? event.description : Self.line(event))
            fflush(nil)  // one line per event, even into a pipe
            printed += 1
        }
    }

    /// "2026-12-01T10:47:12.345678Z EVENT {data}": the full UTC time QEMU stamped.
    static func line(_ event: JSON) -> String {
        let data = event["data"].map { " " + $0.compactString() } ?? ""
        return "\(EventFormatter.isoTimestamp(event)) \(event["event"]?.string ?? "?")\(data)"
    }

    static func standardError(_ text: String) {
        let line = text + "\n"
        _ = write(2, line, line.utf8.count)
    }
}
