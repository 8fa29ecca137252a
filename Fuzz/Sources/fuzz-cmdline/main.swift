import FuzzDriver
import WyrcanChain

/// One input: a kernel cmdline. Whatever it holds, Wyrcan must answer with a plan or a one-line
/// error, and a cmdline it accepts must survive its own chain encoding.
func fuzzCmdline(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let plan = try BootPlan(cmdline: text, imageCmdline: "console=ttyS0")
        _ = plan.text()
        _ = plan.json()
        if plan.args.image != nil { _ = try? Chain(decoding: text) }
        var args = plan.args
        try? args.merge(fetched: plan.args)
    } catch {
        precondition(!error.description.contains("\n"), "a multi-line error: \(error.description)")
    }
    if let answer = try? ConfigServer.parse(Array(UnsafeBufferPointer(start: data, count: size)), server: "https://fuzz") {
        _ = answer.nextCmdlineOrNil
    }
    return 0
}

extension WyrcanArgs {
    var nextCmdlineOrNil: String? { try? nextCmdline() }
}

runFuzzer(fuzzCmdline)
