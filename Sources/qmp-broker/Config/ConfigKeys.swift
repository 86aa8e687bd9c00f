import ErrorEvents

/// Every key the config file knows, in one place: the reader rejects any other key, and
/// `run --help` and the man page list these. A new setting is one line here.
enum ConfigKeys {
    static let broker: [ConfigKey] = [
        ConfigKey("socket-dir", .string, "Where DIR/NAME.qmp (and .ro.qmp, .trace.log) are created; created if missing."),
        ConfigKey("socket-mode", .string, default: "0660", "Octal mode of the broker's sockets."),
        ConfigKey("client-queue-bytes", .integer, default: "4194304", "A client whose unread events exceed this is cut off; one whose unread replies exceed a quarter of it is not read until it has read them."),
        ConfigKey("state-dir", .string, "Where flags and error history are kept (SQLite); without it flags live in memory only."),
        ConfigKey("sysfs-root", .string, default: "/sys", "Root of the sysfs tree with the AER counters."),
        ConfigKey("sysfs-poll-ms", .integer, default: "1000", "How often AER counters are read (10 to 3600000; 0: only when an eventfd, uevent or tracepoint record fires). Unset: 1000, or 30000 while the kernel's ras:aer_event tracepoint is heard."),
        ConfigKey("allow-inject", .boolean, default: "false", "Enable x-vfio-inject-error (drills and tests)."),
        ConfigKey("trace-log-owner", .string, default: "the VMM's own uid and gid", "Owner (USER, UID or UID:GID) of DIR/NAME.trace.log, which QEMU opens itself."),
        ConfigKey("trace-log-mode", .string, default: "0600", "Octal mode of DIR/NAME.trace.log."),
        ConfigKey("history-max-age-days", .integer, default: "90", "Error history rows older than this many days are deleted."),
        ConfigKey("history-max-rows", .integer, default: "100000", "At most this many error history rows are kept."),
        ConfigKey("vm", .tableList(.vm), "One [[vm]] table per VM."),
    ]

    static let vm: [ConfigKey] = [
        ConfigKey("name", .string, required: true, "The VM's name: the broker serves DIR/NAME.qmp."),
        ConfigKey("qmp", .string, required: true, "The VMM's own QMP socket."),
        ConfigKey("socket-mode", .string, default: "the top-level socket-mode", "Octal mode of this VM's sockets."),
        ConfigKey("read-only-socket", .boolean, default: "false", "Also serve DIR/NAME.ro.qmp (query-* only)."),
        ConfigKey("clients-stay-connected", .boolean, default: "false",
                  "Clients stay connected across VMM restarts (as if each sent broker-stay-connected); default: EOF, as from QEMU."),
        ConfigKey("event-ring-size", .integer, default: "1024", "How many numbered events query-broker-events can replay."),
        ConfigKey("handshake-timeout-ms", .integer, default: "10000", "The VMM must greet and answer qmp_capabilities within this."),
        ConfigKey("link-reset-check-ms", .integer, default: "30000",
                  "How often QEMU's tracing is re-checked (and a broken link-reset watch retried); client commands that could change it are checked at once."),
        ConfigKey("command-timeout-ms", .integer, default: "60000", "A command the VMM leaves unanswered this long gets a GenericError."),
        ConfigKey("pid-file", .string, "A file with the VMM's pid, when another process created its QMP socket (default: SO_PEERCRED)."),
        ConfigKey("allowed-uids", .integerList, default: "[] (anyone the mode lets in)", "SO_PEERCRED allow-list of uids."),
        ConfigKey("allowed-gids", .integerList, default: "[]", "SO_PEERCRED allow-list of gids; a peer whose uid or gid is listed may connect."),
        ConfigKey("device", .tableList(.device), "One [[vm.device]] table per watched VFIO device."),
    ]

    static let device: [ConfigKey] = [
        ConfigKey("id", .string, required: true, "The guest-visible QEMU device id."),
        ConfigKey("host", .string, required: true, "The host PCI address, DDDD:BB:DD.F."),
        ConfigKey("policy", .string, default: "forward", "What errors do: \(policies.joined(separator: " | "))."),
        ConfigKey("auto-cont", .boolean, default: "false", "cont a VM the broker stopped once the flag is cleared."),
        ConfigKey("inject-at", .string, "The QEMU device id errors are injected at (default: id, or the port above where QEMU cannot inject at the device)."),
        ConfigKey("error-trigger", .string, default: "takeover for vfio-pci, else eventfd",
                  "How host errors are learnt: \(errorTriggers.joined(separator: " | "))."),
    ]

    static let policies = DevicePolicy.Mode.allCases.map(\.rawValue)
    static let errorTriggers = ["takeover", "eventfd", "none"]
}
