/// A problem in an inventory file, located by file, line and field.
struct InventoryError: Error, CustomStringConvertible, Sendable {
    var file: String
    var line: Int
    var field: String
    var reason: String

    var description: String { "\(file):\(line): \(field): \(reason)" }
}

/// Every problem found in one file (the whole file is validated, not just up to the first error).
struct InventoryErrors: Error, CustomStringConvertible, Sendable {
    var errors: [InventoryError]
    var description: String { errors.map(\.description).joined(separator: "\n") }
}
