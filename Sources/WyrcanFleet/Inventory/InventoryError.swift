import WyrcanChain

/// A problem in an inventory file, located by file, line and field.
public struct InventoryError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int
    public var field: String
    public var reason: String

    /// One line: a field or reason taken from the file is escaped, and a field shortened.
    public var description: String { Message.oneLine("\(file):\(line): \(Message.quoted(field, limit: 200, quotes: false)): \(reason)") }
}

/// Every problem found in one file (the whole file is validated, not just up to the first error).
public struct InventoryErrors: Error, CustomStringConvertible, Sendable {
    public var errors: [InventoryError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
