import ArgumentParser

/// Which monitor a one-shot CLI command talks to: a socket path, or a VM name looked up
/// as SOCKET_DIR/NAME.qmp.
struct MonitorTarget: ParsableArguments {
    @Argument(help: "A QMP unix socket path, or a VM name (served by the broker in --socket-dir).")
    var target: String

    @Option(name: .customLong("socket-dir"), help: "Where the broker's sockets are, for a VM name.")
    var socketDirectory = "/run/qmp-broker"

    var socketPath: String { target.contains("/") ? target : "\(socketDirectory)/\(target).qmp" }
}
