import ArgumentParser

/// `qmp-broker check-config FILE`: the diagnostics `run` would give, plus what can be
/// checked on this host without QEMU, and a non-zero exit when the broker would not start.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Check a config file as `run` would, without starting anything.",
        discussion: """
            Also checks on this host, without QEMU: socket-dir and state-dir (directories; socket-dir \
            absolute), each qmp path (a socket, once it exists), allowed uids and gids, and each \
            device's sysfs directory. Problems exit 1; warnings are printed but pass.
            """)

    @Argument(help: "The TOML configuration file.")
    var file: String

    @Option(name: .customLong("socket-dir"), help: "As for run: overrides socket-dir in the file.")
    var socketDirectory: String?

    @Option(name: .customLong("state-dir"), help: "As for run: overrides state-dir in the file.")
    var stateDirectory: String?

    @Option(name: .customLong("vm"), help: "As for run: NAME=QMP_SOCKET of a VMM besides the file's (repeatable).")
    var vms: [String] = []

    // A launcher checks the descriptors it hands over with the command line it will run.
    @Option(name: .customLong("eventfd"), help: "As for run: VM/DEVICE/SEVERITY=FD, an inherited eventfd (repeatable).")
    var eventFDs: [String] = []

    func run() throws {
        let settings: Settings
        do {
            settings = try Settings.load(file: file, vmArguments: vms, socketDirectory: socketDirectory,
                                         vfio: .init(eventFDs: eventFDs, stateDirectory: stateDirectory))
        } catch {
            print(error.description)
            throw ExitCode(1)
        }
        var host = HostCheck()
        host.check(settings)
        for warning in host.warnings { print("warning: \(warning)") }
        guard host.problems.isEmpty else {
            print(ConfigProblems(source: file, messages: host.problems).description)
            throw ExitCode(1)
        }
        let devices = settings.vms.map(\.recovery.devices.count).reduce(0, +)
        print("\(file): OK, \(settings.vms.count) VM(s), \(devices) device(s)")
    }
}
