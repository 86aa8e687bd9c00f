import Glibc
import Logging

/// The process at the other end of a unix socket, as the kernel recorded it at connect time (SO_PEERCRED).
package struct PeerCredentials: Sendable, Equatable {
    package let pid: Int32
    package let uid: UInt32
    package let gid: UInt32

    package init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// Reads SO_PEERCRED from a connected unix socket; nil if the kernel refuses.
    static func of(socket fd: Int32) -> PeerCredentials? {
        // Glibc's `struct ucred` is hidden behind _GNU_SOURCE, so read its three 32-bit
        // fields (pid_t, uid_t, gid_t, in that order) into a tuple of the same layout.
        var raw: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: raw))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &raw, &length) == 0,
              length == socklen_t(MemoryLayout.size(ofValue: raw))
        else { return nil }
        return PeerCredentials(pid: raw.0, uid: raw.1, gid: raw.2)
    }
}

extension PeerCredentials {
    /// `pid=… uid=… gid=…` for a log line, or `peer=unknown` when SO_PEERCRED failed.
    static func logMetadata(_ peer: PeerCredentials?) -> Logger.Metadata {
        guard let peer else { return ["peer": "unknown"] }
        return ["pid": "\(peer.pid)", "uid": "\(peer.uid)", "gid": "\(peer.gid)"]
    }
}
