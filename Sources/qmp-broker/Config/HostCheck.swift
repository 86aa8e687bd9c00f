import Glibc
import QMPBroker

/// What `check-config` can check on this host without a running QEMU: paths, their
/// kinds, and whether listed ids exist. Problems stop the broker; warnings may be fine
/// (QEMU not started yet, a uid from another host's passwd).
struct HostCheck {
    var problems: [String] = []
    var warnings: [String] = []

    mutating func check(_ settings: Settings) {
        directory(settings.socketDirectory, key: "socket-dir")
        if settings.socketDirectory.first != "/" {
            problems.append("socket-dir \"\(settings.socketDirectory)\" is relative: QEMU resolves the trace log from its own working directory")
        }
        if let state = settings.stateDirectory { directory(state, key: "state-dir") } else {
            warnings.append("no state-dir: link-error flags live in memory only and are lost on restart")
        }
        for vm in settings.vms {
            switch kind(vm.upstreamPath) {
            case .some(S_IFSOCK): break
            case .none: warnings.append("VM '\(vm.name)': qmp \(vm.upstreamPath) does not exist (yet): the broker will retry")
            case .some: problems.append("VM '\(vm.name)': qmp \(vm.upstreamPath) exists but is not a socket")
            }
            for uid in vm.allowedUIDs.sorted() where UserAccount(uid: uid) == nil {
                warnings.append("VM '\(vm.name)': allowed uid \(uid) is not in this host's passwd")
            }
            for gid in vm.allowedGIDs.sorted() where !UserAccount.groupExists(gid) {
                warnings.append("VM '\(vm.name)': allowed gid \(gid) is not in this host's group file")
            }
            for device in vm.recovery.devices {
                let path = "\(vm.recovery.sysfsRoot)/bus/pci/devices/\(device.host)"
                if kind(path) == nil {
                    warnings.append("VM '\(vm.name)' device '\(device.id)': \(path) does not exist: no AER counters to read")
                }
            }
        }
    }

    private mutating func directory(_ path: String, key: String) {
        switch kind(path) {
        case .some(S_IFDIR):
            if access(path, W_OK | X_OK) != 0 { warnings.append("\(key) \(path) is not writable by uid \(getuid())") }
        case .none: warnings.append("\(key) \(path) does not exist: it will be created")
        case .some: problems.append("\(key) \(path) exists but is not a directory")
        }
    }

    /// The file type bits of `path` (not following a final symlink), nil when absent.
    private func kind(_ path: String) -> mode_t? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return status.st_mode & S_IFMT
    }
}
