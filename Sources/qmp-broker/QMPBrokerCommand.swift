import ArgumentParser
import QMPBroker

@main
struct QMPBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qmp-broker",
        abstract: "A QMP broker that turns VFIO PCIe device errors into observable, correct recovery.",
        discussion: """
            Clients use the broker's socket, DIR/NAME.qmp, as they would use QEMU's own monitor; \
            the broker adds VFIO error events and commands (listed by query-qmp-schema), forwards \
            host errors into the guest, flags links that had fatal errors, and stops the VM when \
            the guest resets a flagged link.

            FILES: /etc/qmp-broker/qmp-broker.toml, the config the qmp-broker unit runs with \
            (every key: run --help; check it with check-config). /run/qmp-broker: the sockets and \
            each VM's trace log. /var/lib/qmp-broker/qmp-broker.sqlite: link-error flags and the \
            error history (read with history and summary).

            SIGNALS (run): SIGHUP re-reads the config (systemctl reload qmp-broker); SIGTERM and \
            SIGINT stop it gracefully.

            EXIT STATUS (run): 78 when the configuration has a problem, 73 when the socket \
            directory cannot be created, 1 when the metrics address cannot be served. check-config \
            exits 1 when the broker would not start.

            More: README.md and docs/ in the source tree (deployment, operations, metrics, the QMP \
            additions, the link-reset watch, architecture, testing).
            """,
        version: BrokerVersion.string,
        subcommands: [RunCommand.self, CheckConfigCommand.self, HistoryListCommand.self, HistorySummaryCommand.self,
                      EventsCommand.self, CmdCommand.self, DemoCommand.self],
        defaultSubcommand: nil
    )
}
