/// efivarfs: one file per variable, `NAME-GUID`, holding a 4-byte attribute word then the data.
@usableFromInline
struct EFIVariables: Sendable {
    /// NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS
    static let attributes: UInt32 = 7
    @usableFromInline static let defaultDirectory = "/sys/firmware/efi/efivars"

    let directory: String

    var isAvailable: Bool { FileSystem.isDirectory(directory) }

    func path(_ name: String, guid: String) -> String { "\(directory)/\(name)-\(guid)" }

    /// The variable's data (without its attribute word); nil when it does not exist.
    func read(_ name: String, guid: String) throws(FileError) -> [UInt8]? {
        let file = path(name, guid: guid)
        guard FileSystem.exists(file) else { return nil }
        let bytes = try FileSystem.readFile(file)
        return bytes.count >= 4 ? Array(bytes[4...]) : []
    }

    /// Replaces the variable in one write (efivarfs needs attributes + data in a single write),
    /// first clearing the immutable flag efivarfs sets on an existing variable. Errors are
    /// wrapped by the caller's `system` and `file`.
    func write<Failure: Error>(_ name: String, guid: String, _ data: [UInt8],
                               system: (SystemError) -> Failure, file: (FileError) -> Failure) throws(Failure) {
        let target = path(name, guid: guid)
        var attributes = Self.attributes.littleEndian
        let payload = withUnsafeBytes(of: &attributes) { Array($0) } + data
        if FileSystem.exists(target) {
            do throws(SystemError) { try LinuxSystem.clearImmutable(target) } catch { throw system(error) }
        }
        do throws(FileError) { try FileSystem.writeFile(target, payload) } catch { throw file(error) }
    }
}
