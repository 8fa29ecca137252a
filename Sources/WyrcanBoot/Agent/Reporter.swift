import CCurl
import WyrcanChain

/// Posts boot progress to `wyr.report=URL` (wyrcan-serve's `/v1/report/<mac>`). Best effort:
/// a report that cannot be delivered never stops a boot.
struct Reporter {
    let url: String?

    func send(_ stage: String, detail: String? = nil, image: String? = nil) {
        guard let url else { return }
        var fields = ["\"stage\": \(Self.json(stage))"]
        if let detail { fields.append("\"detail\": \(Self.json(detail))") }
        if let image { fields.append("\"image\": \(Self.json(image))") }
        let body = Array("{\(fields.joined(separator: ", "))}".utf8)
        _ = try? CurlEasy().request("POST", url: url, headers: ["Content-Type: application/json"], body: body, timeoutSeconds: 5)
    }

    static func json(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += "\\u" + String(scalar.value, radix: 16).leftPadded(4) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
