// libFuzzer entry point: `WireExercise` (Sources/QMPBroker/Support) over each input.
// Built by scripts/fuzz.sh with `swiftc -sanitize=fuzzer,address` over the Wire,
// Downstream session and Upstream framing sources; `make fuzz SECONDS=N`.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    WireExercise.run(UnsafeBufferPointer(start: data, count: size))
    return 0
}
