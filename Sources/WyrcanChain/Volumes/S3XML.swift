/// Reads the few flat elements of S3's XML replies (ListObjectsV2, multipart uploads, errors).
/// The replies are machine-written and flat, so locating `<Name>…</Name>` is exact for them;
/// a general XML library would bring libxml2 and ICU (≈ 30 MB) into the boot initramfs.
enum S3XML {
    /// The inner text of every `<name>…</name>` element, in document order.
    static func elements(_ name: String, in xml: String) -> [Substring] {
        let open = "<\(name)>", close = "</\(name)>"
        var out: [Substring] = []
        var rest = xml[...]
        while let start = rest.range(of: open) {
            guard let end = rest[start.upperBound...].range(of: close) else { break }
            out.append(rest[start.upperBound..<end.lowerBound])
            rest = rest[end.upperBound...]
        }
        return out
    }

    /// The decoded text of the first `<name>` element.
    static func value(_ name: String, in xml: some StringProtocol) -> String? {
        elements(name, in: String(xml)).first.map { decode($0) }
    }

    /// Decodes the five predefined entities and numeric character references.
    static func decode(_ text: Substring) -> String {
        guard text.contains("&") else { return String(text) }
        var out = ""
        var rest = text
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            guard let semi = rest[amp...].firstIndex(of: ";") else { break }
            let entity = rest[rest.index(after: amp)..<semi]
            switch entity {
            case "amp": out += "&"
            case "lt": out += "<"
            case "gt": out += ">"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                let scalar: UInt32? = entity.hasPrefix("#x") ? UInt32(entity.dropFirst(2), radix: 16)
                    : entity.hasPrefix("#") ? UInt32(entity.dropFirst()) : nil
                if let scalar, let u = Unicode.Scalar(scalar) { out.unicodeScalars.append(u) } else { out += "&\(entity);" }
            }
            rest = rest[rest.index(after: semi)...]
        }
        return out + rest
    }
}

extension Substring {
    func range(of needle: String) -> Range<Substring.Index>? {
        let n = Array(needle.utf8)
        guard let first = n.first else { return nil }
        let u = self.utf8
        var i = u.startIndex
        while i != u.endIndex {
            if u[i] == first {
                var j = i, k = 0
                while k < n.count, j != u.endIndex, u[j] == n[k] { j = u.index(after: j); k += 1 }
                if k == n.count { return i..<j }
            }
            i = u.index(after: i)
        }
        return nil
    }
}
