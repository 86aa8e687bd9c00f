import ArgumentParser
import QMPBroker
import QMPWire

/// `qmp-broker cmd VM '{"execute": ...}'` or `cmd --hmp VM 'info pci'`: one command, its
/// reply on stdout (virsh qemu-monitor-command style); an error reply exits 1.
struct CmdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cmd", abstract: "Run one QMP (or HMP) command on a VM and print the reply.")

    @OptionGroup var monitor: MonitorTarget

    @Argument(help: "A QMP command as JSON ({\"execute\": ...}), or with --hmp an HMP command line.")
    var command: String

    @Flag(help: "Run an HMP command line (through human-monitor-command) and print its text.")
    var hmp = false

    @Flag(help: "Print the reply as indented JSON.")
    var pretty = false

    func run() throws {
        let request: JSON
        if hmp {
            request = .object(["execute": .string("human-monitor-command"),
                               "arguments": .object(["command-line": .string(command)])])
        } else {
            guard let parsed = try? JSON.parse(command), parsed["execute"]?.string != nil else {
                throw ValidationError("The command must be a JSON object with \"execute\", got: \(command)")
            }
            request = parsed
        }
        let reply: JSON
        do {
            let client = try QMPClient(path: monitor.socketPath)
            try client.negotiate()
            try client.send(request.description + "\n")
            reply = try client.nextReply(timeout: 60)
        } catch {
            throw ValidationError("Cannot run the command on \(monitor.socketPath): \(error)")
        }
        if let error = reply["error"] {
            EventsCommand.standardError("error: \(error["class"]?.string ?? "GenericError"): \(error["desc"]?.string ?? "")")
            throw ExitCode(1)
        }
        if hmp, let text = reply["return"]?.string {
            // HMP ends its lines with CRLF (a terminal's); a shell wants LF.
            let lines = text.replacingOccurrences(of: "\r\n", with: "\n")
            print(lines, terminator: lines.hasSuffix("\n") || lines.isEmpty ? "" : "\n")
        } else {
            print(pretty ? reply.prettyString() : reply.description)
        }
    }
}
