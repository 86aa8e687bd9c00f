import QMPWire

/// The QMP commands that make a stock QEMU 7.2 report guest link resets, and undo it.
///
/// How it works (each point verified on Debian's 7.2.22 binary, and on 10.0.2 where it says):
/// - `trace-event-set-state` alone turns an event on; it prints to QEMU's current log
///   target at once (stderr if the VMM gave no `-D`). Never use HMP `log trace:NAME`: it
///   *replaces* the whole `-d` mask, silently ending e.g. the VMM's `-d guest_errors`.
/// - `logfile PATH` (HMP) moves all `qemu_log` output there, so it is sent *before* the
///   events are enabled (nothing sprays into the VMM's log). QEMU 7.2 opens PATH with plain
///   `fopen`, in append mode for every open after its first; QEMU 10.0.2 always with
///   `fopen(filename, "w")`: it truncates the file and writes without O_APPEND (so send
///   `logfile` only when QEMU is not already writing there). No O_NONBLOCK, no O_CLOEXEC,
///   flushed after every line. A failed `logfile` leaves logging off entirely: check every
///   reply, and give QEMU its stderr back at once.
/// - PATH must be a regular file the broker creates and tails (inotify IN_MODIFY, or
///   polling). Not a FIFO: QEMU's `fopen` of a FIFO with no reader blocks the main loop
///   (QMP and everything else stall until a reader opens), and once the pipe holds 64 KiB
///   that nobody reads, the writing thread blocks while holding the big QEMU lock (QMP
///   stalls; seen after ~1,300 lines). A reader that dies is harmless (QEMU ignores
///   SIGPIPE and drops the lines), but a broker that is merely slow freezes the VM. A
///   regular file never blocks QEMU, keeps what was written while the broker was away, and
///   needs no reader attached before the `logfile` command.
/// - The file grows by ~55 bytes per guest config write (a few KiB per boot). Rotate by
///   sending `logfile NEW`, then read the old file to its end and delete it: our events are
///   all emitted with the big QEMU lock held, as HMP commands run, so once the reply arrives
///   none goes to the old file. Do not truncate a file QEMU may still be writing.
/// - `-D FILE` and `logfile`: `logfile` replaces the VMM's target for everything QEMU
///   logs, and there is no way to ask QEMU for the old one (the broker can read it from
///   `/proc/<qemu pid>/fd` or QEMU's command line). Detaching restores it with `logfile
///   <that path>` or, with no `-D`, `logfile /proc/self/fd/2` (reopens QEMU's fd 2 with
///   QEMU's own rights, in any mount namespace: works for a file or a pipe QEMU may open,
///   as libvirt's is once `VMMStderr` gave it QEMU's group; fails for a socket such as
///   journald's, which leaves logging off). `logfile` with no argument is rejected.
/// - A QEMU started with `-daemonize` `dup2`s the log file onto its fd 2 on every
///   `logfile`: its stderr (error_report, warnings) then also goes to our file (the parser
///   skips such lines), and `/proc/self/fd/2` would name our own file. Restore a daemonized
///   QEMU without `-D` with `logfile /dev/null`, where its stderr pointed before.
/// - QEMU opens PATH itself, so its user and MAC profile (libvirt's AppArmor/SELinux)
///   must allow it. `/dev/fdset/N` is not understood; `/proc/self/fd/N` of a descriptor
///   passed with `add-fd` works (re-opened, so file permissions are checked again).
package enum LinkResetTracing {
    /// The events the broker enables, and why each.
    package static let traceEvents: [String] = [
        // Guest config writes: Secondary Bus Reset (0x3e bit 0x40) and bus renumbering (0x18).
        "pci_cfg_write",
        // A host bus reset of an assigned device, and how it went.
        "vfio_pci_hot_reset",
        "vfio_pci_hot_reset_result",
        // The in-stream bracket of a system reset (the `System` object); one line per object per reset.
        "resettable_phase_enter_begin",
        "resettable_phase_exit_end",
    ]

    /// The canary that proves the watch: QEMU traces every in-band QMP command with its id
    /// (`monitor_qmp_cmd_in_band`, emitted before the command runs, flushed at once). The
    /// broker switches it on, sends one command, and expects that command's id in the file
    /// by the time the reply arrives; it is on only for that.
    package static let canaryEvent = "monitor_qmp_cmd_in_band"

    /// The watched events as three `trace-event-get-state` patterns (QEMU matches them with
    /// `g_pattern_match_simple`), so a check asks three questions, not five.
    static let watchedPatterns = ["pci_cfg_write", "vfio_pci_hot_reset*", "resettable_phase_e*"]

    /// Sent first at attach: which events the VMM has on, the canary's too (to leave them as
    /// they were at detach).
    package static var stateQueries: [TracingCommand] { (watchedPatterns + [canaryEvent]).map { .getTraceEventState(name: $0) } }

    /// Sent at every check: whether a watched event was switched off behind the broker's back.
    package static var checkQueries: [TracingCommand] { watchedPatterns.map { .getTraceEventState(name: $0) } }

    /// The canary pair: switch the event on, then set it back to how the VMM had it. The
    /// second command runs with the event on, so its id is traced: it is the canary.
    package static func canaryCommands(previouslyEnabled: Set<String>) -> [TracingCommand] {
        [.setTraceEventState(name: canaryEvent, enable: true),
         .setTraceEventState(name: canaryEvent, enable: previouslyEnabled.contains(canaryEvent))]
    }

    /// Sent after the state queries, in order; stop at the first failed `check(reply:)`.
    /// `logfile` only when QEMU is not already writing into the file: QEMU ≥ 8 truncates a
    /// file it reopens (`fopen(filename, "w")` in `qemu_set_log_internal`), 7.2 appended.
    package static func attachCommands(logPath: String, pointLog: Bool) -> [TracingCommand] {
        (pointLog ? [.setLogFile(path: logPath)] : []) + traceEvents.map { .setTraceEventState(name: $0, enable: true) }
    }

    /// Undoes `attachCommands`: disables the events the VMM did not have on, then gives the
    /// log back (`restoreLogTo`: the VMM's `-D` path, or its own stderr when it had none).
    package static func detachCommands(previouslyEnabled: Set<String>, restoreLogTo: String) -> [TracingCommand] {
        traceEvents.filter { !previouslyEnabled.contains($0) }.map { .setTraceEventState(name: $0, enable: false) }
            + [.setLogFile(path: restoreLogTo)]
    }

    /// Where QEMU's log goes back to when the broker lets go and the VMM had no `-D`: its own
    /// fd 2, named through procfs. `/dev/stderr` does not exist inside libvirt's private
    /// `/dev`; `/proc/self/fd/2` resolves in QEMU's own process in any mount namespace.
    package static let vmmStderr = "/proc/self/fd/2"

    /// The events enabled before attach, from the replies to `stateQueries`.
    package static func previouslyEnabled(fromReplies replies: [JSON]) -> Set<String> {
        var enabled: Set<String> = []
        for reply in replies {
            for (name, on) in TracingCommand.traceEventStates(fromReply: reply) where on { enabled.insert(name) }
        }
        return enabled
    }

    /// Whether QEMU's `logfile` can take this path as it is: absolute; no `"` or `\` (HMP
    /// quoting), no `%` (QEMU treats `%d` as a pid template and rejects other `%`), and no
    /// control characters.
    package static func isUsableLogPath(_ path: String) -> Bool {
        path.hasPrefix("/") && !path.unicodeScalars.contains { scalar in
            scalar == "\"" || scalar == "\\" || scalar == "%" || scalar.value < 0x20 || scalar.value == 0x7F
        }
    }
}
