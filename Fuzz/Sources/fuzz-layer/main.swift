import FuzzDriver
import WyrcanChain
#if canImport(Glibc)
import Glibc
#endif

/// One input: a layer. It converts (kernel, initrd, cmdline written) or it is refused with one
/// line; never a crash, a hang, or unbounded memory (the unpacked limit stands for the RAM).
let directory: String = {
    let path = "/dev/shm/wyrcan-fuzz-layer-\(getpid())"
    FileSystem.removeTree(path)
    try! FileSystem.createDirectory(path + "/out")
    return path
}()

func fuzzLayer(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let layer = directory + "/layer"
    try! FileSystem.writeFile(layer, Array(UnsafeBufferPointer(start: data, count: size)))
    var builder = InitrdBuilder(compression: .none)
    builder.unpackedLimit = (64 << 20, "allowed to the fuzzer")
    do {
        _ = try builder.build(layers: [layer], outputDirectory: directory + "/out")
    } catch {
        precondition(!error.description.contains("\n"), "a multi-line error: \(error.description)")
    }
    for name in ["kernel", "initrd", "cmdline"] { FileSystem.remove(directory + "/out/" + name) }
    return 0
}

runFuzzer(fuzzLayer)
