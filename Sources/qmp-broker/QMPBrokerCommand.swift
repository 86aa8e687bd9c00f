import ArgumentParser
import QMPBroker

@main
struct QMPBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qmp-broker",
        abstract: "A QMP broker that turns VFIO PCIe device errors into observable, correct recovery.",
        version: BrokerVersion.string,
        subcommands: [RunCommand.self, CheckConfigCommand.self, HistoryListCommand.self, HistorySummaryCommand.self,
                      EventsCommand.self, CmdCommand.self, DemoCommand.self],
        defaultSubcommand: nil
    )
}
