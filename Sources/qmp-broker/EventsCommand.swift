import ArgumentParser
import Glibc
import QMPBroker

/// `qmp-broker events SOCKET`: print events from a QMP socket (the broker's or QEMU's) as they arrive.
struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Print QMP events from SOCKET as they arrive.")

    @Argument(help: "A QMP unix socket (the broker's DIR/NAME.qmp, or QEMU's own).")
    var socket: String

    @Flag(help: "Print each event as one line of JSON, exactly as received.")
    var json = false

    @Option(help: "Stop after this many events (default: run until the socket closes).")
    var count: Int?

    func run() throws {
        let client = try QMPClient(path: socket)
        try client.negotiate()
        var printed = 0
        while count.map({ printed < $0 }) ?? true {
            let event: JSON?
            do { event = try client.nextEvent(timeout: 3600) } catch { return }
            guard let event else { continue }
            print(json ? event.description : EventFormatter.line(event))
            fflush(nil)  // one line per event, even into a pipe
            printed += 1
        }
    }
}
