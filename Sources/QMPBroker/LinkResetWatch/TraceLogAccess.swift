import Glibc

/// QEMU opens the trace log itself: a VMM running as another user (libvirt's QEMU runs as
/// `libvirt-qemu`) needs the file to be its own. By default it is given to the VMM's own
/// uid and gid, learnt from its process; `trace-log-owner` overrides that, and
/// `trace-log-mode` can open it to a group.
struct TraceLogAccess: Sendable {
    let owner: VMConfiguration.FileOwner?
    let mode: UInt32

    init(owner: VMConfiguration.FileOwner? = nil, mode: UInt32 = 0o600) {
        self.owner = owner
        self.mode = mode
    }

    init(_ configuration: VMConfiguration) {
        self.init(owner: configuration.traceLogOwner, mode: configuration.traceLogMode)
    }

    /// With no configured owner, the VMM's own (when it runs as another user than the broker).
    func resolved(forVMM pid: pid_t?) -> TraceLogAccess {
        guard owner == nil, let pid, let vmm = VMMProcess.owner(of: pid), vmm.uid != geteuid() else { return self }
        return TraceLogAccess(owner: VMConfiguration.FileOwner(uid: vmm.uid, gid: vmm.gid), mode: mode)
    }

    /// Whether a file owned by `uid` may be the broker's trace log: its own, or the
    /// configured owner's (the broker gave it away).
    func accepts(owner uid: uid_t) -> Bool { uid == geteuid() || uid == owner?.uid }

    /// Gives the file its owner and mode; what cannot be set is returned for the log.
    func apply(to fd: Int32) -> [String] {
        var problems: [String] = []
        if let owner, fchown(fd, owner.uid, owner.gid) != 0 {
            problems.append("cannot give it to \(owner.uid):\(owner.gid): \(String(cString: strerror(errno)))")
        }
        if fchmod(fd, mode_t(mode)) != 0 {
            problems.append("cannot set mode \(String(mode, radix: 8)): \(String(cString: strerror(errno)))")
        }
        return problems
    }
}
