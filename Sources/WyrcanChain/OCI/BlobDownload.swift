/// A blob being downloaded to a file, across as many transfers as it takes: each one resumes
/// where the file ends (`Range`), bytes are hashed and written in order as they arrive, and the
/// result is checked against the descriptor's size and digest. The steps of one transfer:
/// `begin`, `accept(head:)`, `accept(chunk:)`…, `end`; then `digestHex` once the size is reached.
final class BlobDownload {
    let blob: Descriptor
    let what: String
    private let file: FileHandleFD
    private var digester: Digester
    /// Bytes hashed so far (written, or pending in `buffer`).
    private(set) var received: Int64 = 0
    /// Hosts whose bytes are in the file (a corrupt result is blamed on them).
    private(set) var contributors: Set<String> = []
    private var buffer: [UInt8] = []
    private var host = ""
    private var url = ""
    private var resumeFrom: Int64 = 0
    /// Why the current transfer stopped on our side, if it did.
    private var refusal: RegistryError?

    /// Bytes gathered before they are written (fewer system calls than libcurl's 16 KiB pieces).
    static let writeSize = 256 << 10

    init(_ blob: Descriptor, to path: String) throws(RegistryError) {
        self.blob = blob
        what = "blob \(blob.digest)"
        do throws(FileError) { file = try FileHandleFD.create(path) } catch { throw .file(error) }
        do throws(CryptoError) { digester = try Digester(blob.digest.algorithm.digester) } catch { throw .crypto(error) }
        buffer.reserveCapacity(Self.writeSize)
    }

    var isComplete: Bool { received == blob.size }

    /// Starts a transfer from `host`; returns the headers that ask for the rest.
    func begin(host: String, url: String) -> [String] {
        self.host = host
        self.url = url
        resumeFrom = received
        refusal = nil
        return received > 0 ? ["Range: bytes=\(received)-"] : []
    }

    /// A resumed transfer must continue where we stopped (a proxy may answer from elsewhere); an
    /// answer from the start is as good as a 200 and starts the file over.
    func accept(head response: HTTPResponse) {
        guard resumeFrom > 0, response.status == 200 || response.status == 206 else { return }
        let range = response.header("content-range") ?? "none"
        let start = response.status == 206 ? RegistryClient.rangeStart(range) : 0
        if start == resumeFrom { return }
        if start != 0 {
            refusal = .transport(.partialTransfer("asked for bytes \(resumeFrom)- and got Content-Range '\(Message.quoted(range, quotes: false))'; starting over", url: url))
        }
        restart()
    }

    /// Takes the next bytes of the body; false stops the transfer.
    func accept(chunk: UnsafeRawBufferPointer) -> Bool {
        if refusal != nil { return false }
        if received + Int64(chunk.count) > blob.size {
            refusal = .sizeMismatch(what: what, expected: blob.size, actual: received + Int64(chunk.count))
            return false
        }
        buffer.append(contentsOf: chunk)
        if buffer.count >= Self.writeSize {
            do throws(RegistryError) { try flush() } catch { refusal = error; return false }
        }
        digester.update(chunk)
        received += Int64(chunk.count)
        contributors.insert(host)
        return true
    }

    /// Ends a transfer: what arrived is on disk, and a refusal of ours is thrown.
    func end() throws(RegistryError) {
        try flush()
        if let refusal { throw refusal }
    }

    /// The digest of the whole download (once `isComplete`).
    func digestHex() -> String { digester.finalize().hexString }

    private func flush() throws(RegistryError) {
        defer { buffer.removeAll(keepingCapacity: true) }
        guard !buffer.isEmpty else { return }
        do throws(FileError) { try file.write(buffer) } catch { throw .file(error) }
    }

    private func restart() {
        buffer.removeAll(keepingCapacity: true)
        try? file.truncate(to: 0)
        digester = (try? Digester(blob.digest.algorithm.digester)) ?? digester
        received = 0
        contributors = []
    }
}
