import GRDB

extension StateStore {
    package func traceLogPosition(vm: String) throws(StateStoreError) -> TraceLogPosition? {
        try read { db in
            guard let row = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT file_device, file_inode, offset FROM trace_log WHERE vm = ?
                """), arguments: [vm]) else { return nil }
            let columns = ColumnReader(row: row, table: "trace_log")
            return TraceLogPosition(vm: vm, fileDevice: UInt64(bitPattern: try columns.int64("file_device")),
                                    fileInode: UInt64(bitPattern: try columns.int64("file_inode")),
                                    offset: try columns.int64("offset"))
        }
    }

    package func saveTraceLogPosition(_ position: TraceLogPosition) throws(StateStoreError) {
        try write { db in
            try db.cachedStatement(sql: """
                INSERT INTO trace_log (vm, file_device, file_inode, offset) VALUES (?, ?, ?, ?)
                ON CONFLICT (vm) DO UPDATE SET file_device = excluded.file_device,
                    file_inode = excluded.file_inode, offset = excluded.offset
                """).execute(arguments: [position.vm, Int64(bitPattern: position.fileDevice),
                                         Int64(bitPattern: position.fileInode), position.offset])
        }
    }
}
