import WyrcanChain

/// A problem in an inventory file, located by file, line and field.
struct InventoryError: Error, CustomStringConvertible, Sendable {
    var file: String
    var line: Int
    var field: String
    var reason: String

    /// One line: a field or reason taken from the file is escaped, and a field shortened.
    var description: String { Message.oneLine("\(file):\(line): \(Message.quoted(field, limit: 200, quotes: false)): \(reason)") }
}

/// Every problem found in one file (the whole file is validated, not just up to the first error).
struct InventoryErrors: Error, CustomStringConvertible, Sendable {
    var errors: [InventoryError]
    var description: String { errors.map(\.description).joined(separator: "\n") }
}
