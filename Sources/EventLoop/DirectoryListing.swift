import Glibc

/// The names in a directory, read safely: `readdir` hands out records only as long as
/// their names (`d_reclen`), so copying a whole `dirent` (`entry.pointee.d_name`, 256
/// bytes) can run off the end of its buffer and fault on the next page. Only the name's
/// own bytes are read here.
package enum DirectoryListing {
    /// The names without `.` and `..`, in the order the kernel lists them; nil when the
    /// directory cannot be opened (`errno` says why).
    package static func names(_ path: String) -> [String]? {
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        let nameOffset = MemoryLayout<dirent>.offset(of: \.d_name)!
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = String(cString: UnsafeRawPointer(entry).advanced(by: nameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
