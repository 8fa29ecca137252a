#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer's driver started from the executable's own main (SwiftPM gives every executable
/// one, so libFuzzer's `main` is not the one that runs): it calls `body` on each input.
public func runFuzzer(_ body: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Never {
    var count = CommandLine.argc
    var values = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&count, &values, body))
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ body: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32
