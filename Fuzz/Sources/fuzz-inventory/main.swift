import FuzzDriver
import WyrcanChain
import WyrcanFleet

/// One input: an inventory file. It loads (and every host renders) or it is refused, every
/// problem one line.
func fuzzInventory(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard let text = String(validating: UnsafeBufferPointer(start: data, count: size), as: UTF8.self) else { return 0 }
    do {
        let inventory = try InventoryLoader.load(text: text, file: "fuzz.yaml")
        for mac in inventory.hosts.keys {
            guard let (profile, group) = inventory.profile(for: mac),
                  let config = try? HostBootConfig(mac: mac, group: group, profile: profile, inventory: inventory) else { continue }
            if config.mode == .boot {
                let endpoint = ConfigEndpoint(url: "https://s:8443", pin: ConfigEndpoint.placeholderPin)
                let cmdline = try? config.publicCmdline(reportURL: "http://s/v1/report/\(mac)", endpoint: endpoint)
                _ = IPXEScript.host(config, baseURL: "http://s", cmdline: cmdline ?? "")
            }
        }
    } catch {
        for problem in error.errors { precondition(!problem.description.contains("\n"), "a multi-line error: \(problem.description)") }
    }
    return 0
}

runFuzzer(fuzzInventory)
