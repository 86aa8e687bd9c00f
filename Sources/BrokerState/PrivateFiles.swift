import Glibc

/// The state file holds every device's error history: readable by its owner only.
///
/// SQLite creates a database file 0644 (less the umask) and gives its `-wal` and `-shm`
/// files the main file's mode (`findCreateFileMode` in os_unix.c). So creating the main
/// file 0600 before SQLite opens it makes all three private; files an older broker left
/// readable are narrowed too.
enum PrivateFiles {
    static let mode: mode_t = 0o600

    static func prepare(databaseAt path: String) throws(StateStoreError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw .cannotOpen(path: path, detail: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else {
            throw .cannotOpen(path: path, detail: "cannot make it private: \(String(cString: strerror(errno)))")
        }
        for suffix in ["-wal", "-shm"] {
            // Absent is fine (SQLite creates them with the main file's mode); a symlink is not followed.
            let side = open(path + suffix, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)
            guard side >= 0 else { continue }
            _ = fchmod(side, mode)
            close(side)
        }
    }
}
