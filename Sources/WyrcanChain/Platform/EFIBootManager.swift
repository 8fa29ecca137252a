/// The firmware's boot entries (UEFI's global `Boot####`, `BootOrder`, `BootCurrent`,
/// `BootNext` variables in efivarfs), for `wyr.mode=exit`: the next boot, once, from the first
/// entry in `BootOrder` that boots a device — active, not hidden, not an application of the
/// firmware's own (its setup screen, its shell), not the entry this boot came from and not a
/// network boot (which would only bring the machine back here).
public struct EFIBootManager: Sendable {
    public static let globalGUID = "8be4df61-93ca-11d2-aa0d-00e098032b8c"

    public var directory: String { variables.directory }
    let variables: EFIVariables
    public init(directory: String = EFIVariables.defaultDirectory) { variables = EFIVariables(directory: directory) }

    /// One `Boot####` entry, as far as choosing goes.
    public struct Entry: Sendable, Equatable {
        public var number: UInt16
        public var description: String
        public var isActive: Bool
        /// Hidden, or of the application category (not part of the boot sequence).
        public var isHidden: Bool
        /// Its device path has a network node (MAC, IPv4, IPv6, URI): PXE or HTTP boot.
        public var bootsFromNetwork: Bool
        /// Its device path is a file in the firmware's own volume (the setup screen, a shell).
        public var isFirmwareApplication: Bool

        /// A device this machine could boot from instead of the network.
        public var bootsALocalDevice: Bool { isActive && !isHidden && !bootsFromNetwork && !isFirmwareApplication }
        public var name: String { Self.name(number) }
        static func name(_ number: UInt16) -> String { "Boot" + String(number, radix: 16, uppercase: true).zeroPadded(to: 4) }
    }

    public enum BootManagerError: Error, CustomStringConvertible, Sendable {
        case unavailable(String)
        case noBootOrder
        case noDiskEntry(tried: [String])
        case file(FileError)
        case system(SystemError)

        public var description: String {
            switch self {
            case .unavailable(let directory): return "EFI variables are not available (\(directory) is missing: not booted with EFI?); wyr.mode=exit needs EFI"
            case .noBootOrder: return "the firmware has no BootOrder: no boot entry to leave to"
            case .noDiskEntry(let tried): return "no boot entry to leave to in BootOrder (\(tried.isEmpty ? "empty" : tried.joined(separator: ", "))): each is this boot's own, inactive, hidden, the firmware's own or a network boot"
            case .file(let e): return e.description
            case .system(let e): return e.description
            }
        }
    }

    /// A global variable's data, nil when it does not exist.
    func read(_ name: String) throws(BootManagerError) -> [UInt8]? {
        do throws(FileError) { return try variables.read(name, guid: Self.globalGUID) } catch { throw .file(error) }
    }

    static func uint16s(_ bytes: [UInt8]) -> [UInt16] {
        stride(from: 0, to: bytes.count - 1, by: 2).map { UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8 }
    }

    public func bootOrder() throws(BootManagerError) -> [UInt16] { try read("BootOrder").map(Self.uint16s) ?? [] }
    public func bootCurrent() throws(BootManagerError) -> UInt16? { try read("BootCurrent").flatMap { Self.uint16s($0).first } }

    public func entry(_ number: UInt16) throws(BootManagerError) -> Entry? {
        try read(Entry.name(number)).flatMap { Self.parse(loadOption: $0, number: number) }
    }

    /// EFI_LOAD_OPTION: Attributes (u32), FilePathListLength (u16), Description (UCS-2, NUL
    /// ended), then the device path (nodes of Type, SubType, Length u16).
    static func parse(loadOption bytes: [UInt8], number: UInt16) -> Entry? {
        guard bytes.count >= 6 else { return nil }
        let attributes = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
        let pathLength = Int(UInt16(bytes[4]) | UInt16(bytes[5]) << 8)
        var offset = 6
        var units: [UInt16] = []
        while offset + 1 < bytes.count {
            let unit = UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
            offset += 2
            if unit == 0 { break }
            units.append(unit)
        }
        let description = String(decoding: units, as: UTF16.self)
        var network = false
        var firmware = false
        var node = offset
        let end = min(bytes.count, offset + pathLength)
        while node + 4 <= end {
            let type = bytes[node], subtype = bytes[node + 1]
            let length = Int(UInt16(bytes[node + 2]) | UInt16(bytes[node + 3]) << 8)
            if type == 0x7F && subtype == 0xFF { break }
            // Messaging device path: MAC (11), IPv4 (12), IPv6 (13), URI (24).
            if type == 3 && [11, 12, 13, 24].contains(subtype) { network = true }
            // Media device path: PIWG firmware file (6) or volume (7).
            if type == 4 && (subtype == 6 || subtype == 7) { firmware = true }
            guard length >= 4 else { break }
            node += length
        }
        // LOAD_OPTION_ACTIVE 0x1, LOAD_OPTION_HIDDEN 0x8, LOAD_OPTION_CATEGORY 0x1F00 (0: boot).
        return Entry(number: number, description: description, isActive: attributes & 0x1 != 0,
                     isHidden: attributes & 0x8 != 0 || attributes & 0x1F00 != 0, bootsFromNetwork: network, isFirmwareApplication: firmware)
    }

    /// The entry `wyr.mode=exit` leaves to.
    public func diskEntry() throws(BootManagerError) -> Entry {
        guard variables.isAvailable else { throw .unavailable(directory) }
        let order = try bootOrder()
        guard !order.isEmpty else { throw .noBootOrder }
        let current = try bootCurrent()
        var tried: [String] = []
        for number in order where number != current {
            guard let entry = try entry(number) else { continue }
            if entry.bootsALocalDevice { return entry }
            tried.append("\(entry.name) \(Message.quoted(entry.description, limit: 40))")
        }
        throw .noDiskEntry(tried: tried)
    }

    /// Sets `BootNext` (one boot, then the firmware deletes it).
    public func setBootNext(_ number: UInt16) throws(BootManagerError) {
        guard variables.isAvailable else { throw .unavailable(directory) }
        try variables.write("BootNext", guid: Self.globalGUID, [UInt8(number & 0xFF), UInt8(number >> 8)],
                            system: BootManagerError.system, file: BootManagerError.file)
    }
}
