import Glibc

/// A passwd entry, looked up by name or id.
struct UserAccount {
    let name: String
    let uid: UInt32
    let gid: UInt32

    init?(name: String) {
        guard let entry = getpwnam(name) else { return nil }
        self.init(entry.pointee)
    }

    init?(uid: UInt32) {
        guard let entry = getpwuid(uid) else { return nil }
        self.init(entry.pointee)
    }

    private init(_ entry: passwd) {
        name = String(cString: entry.pw_name)
        uid = entry.pw_uid
        gid = entry.pw_gid
    }

    static func groupExists(_ gid: UInt32) -> Bool { getgrgid(gid) != nil }
}
