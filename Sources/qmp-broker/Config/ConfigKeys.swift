import BrokerState
import ErrorEvents
import QMPBroker
import VFIOWatch

/// Every key the config file knows, in one place: the reader rejects any other key, and
/// `run --help` and the man page list these. A new setting is one line here. The defaults
/// shown are the values the code starts from (`VMConfiguration`, `VFIORecoverySettings`,
/// `DevicePolicy.default`, `HistoryRetention`), not copies of them.
enum ConfigKeys {
    static let vmDefaults = VMConfiguration(name: "", upstreamPath: "", socketPath: "")
    static let recoveryDefaults = VFIORecoverySettings()

    /// A mode as the config file writes it, e.g. `0660`.
    static func octal(_ mode: UInt32) -> String { "0" + String(mode, radix: 8) }

    static let broker: [ConfigKey] = [
        ConfigKey("socket-dir", .string, "Where DIR/NAME.qmp (and .ro.qmp, .trace.log) are created; created if missing."),
        ConfigKey("socket-mode", .string, default: octal(vmDefaults.socketMode), "Octal mode of the broker's sockets."),
        ConfigKey("client-queue-bytes", .integer, default: "\(vmDefaults.clientQueueBytes)", "A client whose unread events exceed this is cut off; one whose unread replies exceed a quarter of it is not read until it has read them."),
        ConfigKey("state-dir", .string, "Where flags and error history are kept (SQLite); without it flags live in memory only."),
        ConfigKey("sysfs-root", .string, default: recoveryDefaults.sysfsRoot, "Root of the sysfs tree with the AER counters."),
        ConfigKey("sysfs-poll-ms", .integer, default: "\(recoveryDefaults.pollMilliseconds)", "How often AER counters are read (10 to 3600000; 0: only when an eventfd, uevent or tracepoint record fires). Unset: \(recoveryDefaults.pollMilliseconds), or \(recoveryDefaults.pollMillisecondsBesideTracepoint) while the kernel's ras:aer_event tracepoint is heard."),
        ConfigKey("allow-inject", .boolean, default: "\(recoveryDefaults.allowInject)", "Enable x-vfio-inject-error (drills and tests)."),
        ConfigKey("trace-log-owner", .string, default: "the VMM's own uid and gid", "Owner (USER, UID or UID:GID) of DIR/NAME.trace.log, which QEMU opens itself."),
        ConfigKey("trace-log-mode", .string, default: octal(vmDefaults.traceLogMode), "Octal mode of DIR/NAME.trace.log."),
        ConfigKey("history-max-age-days", .integer, default: "\(HistoryRetention.defaultMaxAgeDays)", "Error history rows older than this many days are deleted."),
        ConfigKey("history-max-rows", .integer, default: "\(HistoryRetention.defaultMaxRows)", "At most this many error history rows are kept."),
        ConfigKey("vm", .tableList(.vm), "One [[vm]] table per VM."),
    ]

    static let vm: [ConfigKey] = [
        ConfigKey("name", .string, required: true, "The VM's name: the broker serves DIR/NAME.qmp."),
        ConfigKey("qmp", .string, required: true, "The VMM's own QMP socket."),
        ConfigKey("socket-mode", .string, default: "the top-level socket-mode", "Octal mode of this VM's sockets."),
        ConfigKey("read-only-socket", .boolean, default: "false", "Also serve DIR/NAME.ro.qmp (query-* only)."),
        ConfigKey("clients-stay-connected", .boolean, default: "\(vmDefaults.clientsStayConnected)",
                  "Clients stay connected across VMM restarts (as if each sent broker-stay-connected); default: EOF, as from QEMU."),
        ConfigKey("event-ring-size", .integer, default: "\(vmDefaults.eventRingSize)", "How many numbered events query-broker-events can replay."),
        ConfigKey("handshake-timeout-ms", .integer, default: "\(vmDefaults.handshakeTimeoutMilliseconds)", "The VMM must greet and answer qmp_capabilities within this."),
        ConfigKey("link-reset-check-ms", .integer, default: "\(vmDefaults.linkResetCheckMilliseconds)",
                  "How often QEMU's tracing is re-checked (and a broken link-reset watch retried); client commands that could change it are checked at once."),
        ConfigKey("command-timeout-ms", .integer, default: "\(vmDefaults.commandTimeoutMilliseconds)", "A command the VMM leaves unanswered this long gets a GenericError."),
        ConfigKey("pid-file", .string, "A file with the VMM's pid, when another process created its QMP socket (default: SO_PEERCRED)."),
        ConfigKey("allowed-uids", .integerList, default: "[] (anyone the mode lets in)", "SO_PEERCRED allow-list of uids."),
        ConfigKey("allowed-gids", .integerList, default: "[]", "SO_PEERCRED allow-list of gids; a peer whose uid or gid is listed may connect."),
        ConfigKey("device", .tableList(.device), "One [[vm.device]] table per watched VFIO device."),
    ]

    static let device: [ConfigKey] = [
        ConfigKey("id", .string, required: true, "The guest-visible QEMU device id."),
        ConfigKey("host", .string, required: true, "The host PCI address, DDDD:BB:DD.F."),
        ConfigKey("policy", .string, default: DevicePolicy.default.mode.rawValue, "What errors do: \(policies.joined(separator: " | "))."),
        ConfigKey("auto-cont", .boolean, default: "\(DevicePolicy.default.autoCont)", "cont a VM the broker stopped once the flag is cleared."),
        ConfigKey("inject-at", .string, "The QEMU device id errors are injected at (default: id, or the port above where QEMU cannot inject at the device)."),
        ConfigKey("error-trigger", .string, default: "\(ErrorTriggerMode.takeover.rawValue) for vfio-pci, else \(ErrorTriggerMode.eventfd.rawValue)",
                  "How host errors are learnt: \(errorTriggers.joined(separator: " | "))."),
    ]

    static let policies = DevicePolicy.Mode.allCases.map(\.rawValue)
    static let errorTriggers = ErrorTriggerMode.allCases.map(\.rawValue)
}
