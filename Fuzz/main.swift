// libFuzzer entry point: `WireExercise` (Sources/BrokerTesting) over each input.
// Built by scripts/fuzz.sh with `swiftc -sanitize=fuzzer,address` over QMPWire, the
// client session and the upstream framing sources; `make fuzz SECONDS=N`.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    WireExercise.run(UnsafeBufferPointer(start: data, count: size))
    return 0
}
