import Glibc

/// The regular file QEMU appends its trace lines to, opened by the broker for reading.
///
/// QEMU opens the path itself (`logfile PATH`, plain `fopen` in append mode: it follows
/// symlinks), so the broker must make sure that what sits at PATH is its own file: a
/// symlink or hard link planted there would make QEMU append to the victim. Opening with O_NOFOLLOW refuses a symlink; fstat refuses anything not a
/// regular file owned by the broker with one link; such an entry is unlinked (the entry,
/// never what it points at) and the file created afresh with O_EXCL. Right after QEMU's
/// `logfile` reply, `isStillAtPath` checks that PATH still names the very inode the
/// broker reads, which closes the window between the two opens.
struct TraceLogFile {
    struct Identity: Equatable, Sendable {
        let device: UInt64
        let inode: UInt64
    }

    let path: String
    let fd: Int32
    let identity: Identity
    /// Size when opened: what lies before is from before this attach.
    let sizeAtOpen: Int64
    /// What the broker found and replaced, or distrusts (for the log).
    let warnings: [String]
    /// This open created the file: no process can have had it open before.
    let isNew: Bool

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func open(_ path: String, access: TraceLogAccess = TraceLogAccess()) throws(Failure) -> TraceLogFile {
        var warnings: [String] = []
        if let problem = directoryProblem(of: path) { warnings.append(problem) }
        var isNew = true
        var fd = Glibc.open(path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
        if fd < 0 && errno == EEXIST {
            isNew = false
            fd = Glibc.open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
        }
        if fd < 0 && errno != ELOOP {
            throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        if fd >= 0, let refusal = refusal(of: fd, access: access) {
            close(fd)
            fd = -1
            warnings.append("replaced \(path): \(refusal)")
        } else if fd < 0 {
            warnings.append("replaced \(path): a symbolic link")
        }
        if fd < 0 {
            // The entry, not its target, goes; O_EXCL then refuses anything planted meanwhile.
            guard unlink(path) == 0 || errno == ENOENT else {
                throw Failure(description: "cannot remove \(path): \(String(cString: strerror(errno)))")
            }
            fd = Glibc.open(path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
            isNew = true
            guard fd >= 0 else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
            if let refusal = refusal(of: fd, access: access) {
                close(fd)
                throw Failure(description: "\(path) is not the broker's file: \(refusal)")
            }
        }
        warnings += access.apply(to: fd).map { "\(path): \($0)" }
        // Every read after QEMU appended would move the atime (relatime: older than the
        // mtime) and dirty the inode on the error path. `O_NOATIME` (which Glibc's module
        // does not export) needs the file's owner: where it went to the VMM's user, EPERM
        // leaves the atime as it was.
        let noAccessTime: Int32 = 0o1000000
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | noAccessTime)
        var status = stat()
        fstat(fd, &status)
        return TraceLogFile(path: path, fd: fd, identity: Identity(status), sizeAtOpen: Int64(status.st_size),
                            warnings: warnings, isNew: isNew)
    }

    /// Whether `path` still names this file (no symlink, no other inode put in its place).
    var isStillAtPath: Bool {
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return false }
        return Identity(status) == identity
    }

    /// What makes an open file unfit to hand to QEMU, or nil.
    private static func refusal(of fd: Int32, access: TraceLogAccess) -> String? {
        var status = stat()
        guard fstat(fd, &status) == 0 else { return "fstat failed" }
        if status.st_mode & S_IFMT != S_IFREG { return "not a regular file" }
        if status.st_nlink != 1 { return "\(status.st_nlink) hard links" }
        if !access.accepts(owner: status.st_uid) { return "owned by uid \(status.st_uid)" }
        return nil
    }

    /// A directory others may write to lets them swap the file between checks.
    private static func directoryProblem(of path: String) -> String? {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        var status = stat()
        guard stat(directory.isEmpty ? "/" : directory, &status) == 0 else { return nil }
        let writableByOthers = status.st_mode & (S_IWGRP | S_IWOTH) != 0
        let sticky = status.st_mode & S_ISVTX != 0
        guard writableByOthers && !sticky else { return nil }
        return "directory \(directory) is writable by group or others: the trace log could be replaced"
    }
}

extension TraceLogFile.Identity {
    init(_ status: stat) {
        self.init(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }
}
