import VFIOWatch

/// `PathReader` under the name `VMCapabilities.swift` still spells.
typealias TextFile = PathReader
