/// A producer's event that cannot be accepted. `field` is a JSON path such as
/// `[2].data.task.id`, so the producer can find the culprit in a batch.
package struct IngestionError: Error, Sendable, Equatable, CustomStringConvertible {
    package var field: String?
    package var message: String

    package init(field: String?, message: String) {
        self.field = field
        self.message = message
    }

    package var description: String {
        if let field { return "\(field): \(message)" }
        return message
    }
}
