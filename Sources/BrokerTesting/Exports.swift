@_exported import RecoveryDrill
