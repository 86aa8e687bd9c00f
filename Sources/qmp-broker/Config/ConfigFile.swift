import Glibc
import QMPBroker
import VFIOWatch

/// The config file's bytes as TOML text, or why there is none. TOML is UTF-8 only: bytes
/// that are not UTF-8 are refused here, because decoding them leniently would hand the
/// parser U+FFFD where the operator wrote something else (a socket path, a device id).
enum ConfigFile {
    enum Read {
        case text(String)
        case unreadable(String)
    }

    static func read(_ path: String) -> Read {
        var status = stat()
        guard stat(path, &status) == 0 else { return .unreadable("--config \(path): \(String(cString: strerror(errno)))") }
        // A directory is named as one, not by read(2)'s "Is a directory".
        if status.st_mode & S_IFMT == S_IFDIR { return .unreadable("--config \(path): is a directory, not a TOML file") }
        let bytes: [UInt8]
        switch PathReader.bytes(path) {
        case .success(let read): bytes = read
        case .failure(let error): return .unreadable("--config \(path): \(error.reason)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { return .unreadable(notUTF8(bytes)) }
        return .text(text)
    }

    /// Names the line and, where the line is `key = ...`, the key whose value is not UTF-8.
    static func notUTF8(_ bytes: [UInt8]) -> String {
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() where String(validating: line, as: UTF8.self) == nil {
            let prefix = line.prefix { $0 != UInt8(ascii: "=") }
            let key = String(decoding: prefix, as: UTF8.self).trimmingBlanks
            let what = prefix.count < line.count && !key.isEmpty ? "the value of `\(key)`" : "the text"
            return "line \(index + 1): \(what) is not valid UTF-8 (TOML files are UTF-8)"
        }
        return "the file is not valid UTF-8 (TOML files are UTF-8)"
    }
}

/// What an inherited descriptor number refers to in this process.
enum InheritedDescriptor: Equatable {
    case eventFD
    case closed
    case other(String)

    static func kind(of fd: Int32) -> InheritedDescriptor {
        guard fcntl(fd, F_GETFD) != -1 else { return .closed }
        var buffer = [CChar](repeating: 0, count: 256)
        let count = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
        guard count > 0 else { return .other("unknown") }
        let target = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return target == "anon_inode:[eventfd]" ? .eventFD : .other(target)
    }
}

private extension String {
    var trimmingBlanks: String {
        var characters = Substring(self)
        while characters.first?.isWhitespace == true { characters.removeFirst() }
        while characters.last?.isWhitespace == true { characters.removeLast() }
        return String(characters)
    }
}
