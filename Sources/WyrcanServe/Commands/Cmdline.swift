import ArgumentParser
import WyrcanChain
import WyrcanFleet

struct Cmdline: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build the Wyrcan cmdline for a chain of images and print it.",
        discussion: """
            Each --image adds one Wyrcan stage; --arg values go to the final system. Example:
              wyrcan-serve cmdline --image reg/wyrcan:2 --image reg/os/debian --arg "quiet log-buf-len=1M"
            """)

    @Option(help: "An image to boot; repeat for a chain (first = booted first).")
    var image: [String] = []

    @Option(help: "A parameter for the final system; may hold spaces inside double quotes.")
    var arg: [String] = []

    @Option(name: .customLong("stage-param"), help: "A parameter for every Wyrcan stage, e.g. wyr.insecure=HOST:PORT or wyr.rescue.")
    var stageParameters: [String] = []

    func run() throws {
        guard !image.isEmpty else { throw ValidationError("give at least one --image") }
        var final: [String] = []
        for a in arg { final += KernelCmdline.tokenize(a).map(\.raw) }
        do {
            let stages = image.map { ChainStage(image: $0, parameters: stageParameters) }
            print(try Chain(stages: stages, final: final).encode())
        } catch {
            throw ValidationError(error.description)
        }
    }
}
