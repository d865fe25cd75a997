import AiravataProtocol
import AiravataTestSupport

/// Differences in field names and JSON types between a message and a reference,
/// ignoring values. Paths name each difference, e.g. `data.task.workerId: expected null, got string`.
func shapeDifferences(_ actual: JSONValue, _ reference: JSONValue, path: String = "$") -> [String] {
    switch (actual, reference) {
    case (.object(let lhs), .object(let rhs)):
        var differences: [String] = []
        for key in rhs.keys where lhs[key] == nil { differences.append("\(path).\(key): missing") }
        for key in lhs.keys where rhs[key] == nil { differences.append("\(path).\(key): unexpected field") }
        for key in rhs.keys {
            if let left = lhs[key], let right = rhs[key] {
                differences += shapeDifferences(left, right, path: "\(path).\(key)")
            }
        }
        return differences
    case (.array(let lhs), .array(let rhs)):
        guard let first = rhs.first else { return [] }
        return lhs.enumerated().flatMap { shapeDifferences($1, first, path: "\(path)[\($0)]") }
    default:
        return actual.kindName == reference.kindName
            ? [] : ["\(path): expected \(reference.kindName), got \(actual.kindName)"]
    }
}
